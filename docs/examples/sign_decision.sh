#!/bin/sh
# Answer a gate through the gate server with a signed request (curl and openssl):
#   GATE_URL=https://gates.example.org GATE_SENDER=chatbot GATE_SECRET=... \
#       sh sign_decision.sh GATE_ID approve
set -eu
body=$(printf '{"gate": "%s", "choice": "%s"}' "$1" "$2")
timestamp=$(date +%s)
signature=$(printf '%s.%s' "$timestamp" "$body" |
  openssl dgst -sha256 -hmac "$GATE_SECRET" -r | cut -d ' ' -f 1)
curl --silent --show-error --fail-with-body \
  -H "Content-Type: application/json" \
  -H "X-Gate-Sender: $GATE_SENDER" \
  -H "X-Gate-Timestamp: $timestamp" \
  -H "X-Gate-Signature-256: sha256=$signature" \
  --data-binary "$body" \
  "$GATE_URL/hooks/decision"
