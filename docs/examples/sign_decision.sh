#!/bin/sh
# Answer a gate through the gate server with a signed request (curl and openssl):
#   GATE_URL=https://gates.example.org GATE_SENDER=chatbot GATE_SECRET=... \
#       sh sign_decision.sh GATE_ID approve
set -eu
path=/hooks/decision # the endpoint as the server routes it (no proxy prefix), no query
body=$(printf '{"gate": "%s", "choice": "%s"}' "$1" "$2")
timestamp=$(date +%s)
# v2 LF timestamp LF method LF canonical path LF canonical query (empty) LF body
signature=$(printf 'v2\n%s\nPOST\n%s\n\n%s' "$timestamp" "$path" "$body" |
  openssl dgst -sha256 -hmac "$GATE_SECRET" -r | cut -d ' ' -f 1)
curl --silent --show-error --fail-with-body \
  -H "Content-Type: application/json" \
  -H "X-Gate-Sender: $GATE_SENDER" \
  -H "X-Gate-Timestamp: $timestamp" \
  -H "X-Gate-Signature-256: v2=$signature" \
  --data-binary "$body" \
  "$GATE_URL$path"
