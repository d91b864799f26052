"""Answer a gate through the gate server with a signed request (standard library only).

    GATE_URL=https://gates.example.org GATE_SENDER=chatbot GATE_SECRET=... \
        python sign_decision.py GATE_ID approve --set lr=0.05 --comment "looks good"
"""

import argparse
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request


def signed_headers(sender: str, secret: str, body: bytes) -> dict[str, str]:
    """HMAC-SHA256 over "<unix seconds>.<body>", keyed with the secret as given."""
    timestamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return {
        "Content-Type": "application/json",
        "X-Gate-Sender": sender,
        "X-Gate-Timestamp": timestamp,
        "X-Gate-Signature-256": f"sha256={digest.hexdigest()}",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gate")
    parser.add_argument("choice")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--comment", default="")
    args = parser.parse_args()
    fields = dict(item.split("=", 1) for item in args.set)
    body = json.dumps(
        {"gate": args.gate, "choice": args.choice, "fields": fields, "comment": args.comment}
    ).encode()
    headers = signed_headers(os.environ["GATE_SENDER"], os.environ["GATE_SECRET"], body)
    request = urllib.request.Request(
        os.environ["GATE_URL"].rstrip("/") + "/hooks/decision", body, headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            gate = json.load(response)
    except urllib.error.HTTPError as e:  # 4xx: the server says why
        print(f"refused ({e.code}): {json.load(e)['detail']}", file=sys.stderr)
        return 1
    print(f"{gate['id']}: {gate['status']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
