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
from urllib.parse import quote, unquote_to_bytes


def canonical(text: str, plus_is_space: bool = False) -> str:
    """Percent-decoded, then encoded again: all but A-Z a-z 0-9 - . _ ~ as %XX."""
    return quote(unquote_to_bytes(text.replace("+", " ") if plus_is_space else text), safe="")


def signed_headers(
    sender: str, secret: str, method: str, path: str, query: str, body: bytes
) -> dict[str, str]:
    """HMAC-SHA256, keyed with the secret as given, over
    "v2 LF timestamp LF METHOD LF canonical path LF canonical query LF body"."""
    timestamp = str(int(time.time()))
    pairs = sorted(
        (canonical(name, True), canonical(value, True))
        for name, _, value in (part.partition("=") for part in query.split("&") if part)
    )
    message = "\n".join(
        [
            "v2",
            timestamp,
            method.upper(),
            "/".join(canonical(segment) for segment in path.split("/")),
            "&".join(f"{name}={value}" for name, value in pairs),
        ]
    )
    digest = hmac.new(secret.encode(), message.encode() + b"\n" + body, hashlib.sha256)
    return {
        "Content-Type": "application/json",
        "X-Gate-Sender": sender,
        "X-Gate-Timestamp": timestamp,
        "X-Gate-Signature-256": f"v2={digest.hexdigest()}",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gate")
    parser.add_argument("choice")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--comment", default="")
    args = parser.parse_args()
    fields = dict(item.split("=", 1) for item in args.set)
    body = json.dumps({"choice": args.choice, "fields": fields, "comment": args.comment}).encode()
    # the gate's own endpoint: the signature is good for this gate only
    path = f"/api/gates/{quote(args.gate, safe='')}/decision"
    url = os.environ["GATE_URL"].rstrip("/") + path
    headers = signed_headers(
        os.environ["GATE_SENDER"], os.environ["GATE_SECRET"], "POST", path, "", body
    )
    request = urllib.request.Request(url, body, headers, method="POST")
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
