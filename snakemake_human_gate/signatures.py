"""What a signed request signs (format ``v2``), and its check. Pure: no I/O.

A sender (a chat bot, a CI job) sends, with the raw body::

    X-Gate-Sender: <name>
    X-Gate-Timestamp: <unix seconds>
    X-Gate-Signature-256: v2=<64 lowercase hex digits>

the hex HMAC-SHA256, keyed with the sender's secret (its ASCII bytes, as printed), of::

    v2 LF <timestamp> LF <METHOD> LF <canonical path> LF <canonical query> LF <body>

so that a signature binds the request to its method, its endpoint (which gate it
decides) and its body. The canonical path is the path of the endpoint as the server
routes it (``/api/gates/ID/decision``, ``/hooks/decision``: without the prefix of a
reverse proxy), each ``/``-separated segment percent-decoded and encoded again: every
byte but ``A-Z a-z 0-9 - . _ ~`` as ``%XX`` with upper-case hex. The canonical query
is its ``name=value`` pairs, each side decoded (``+`` as a space) and encoded the same
way, sorted, joined with ``&`` (empty without a query; ``name`` alone is ``name=``).

The first format, ``sha256=`` over ``<timestamp>.<body>``, covered neither method nor
path: a request signed for one gate's URL decided another gate when sent there. It is
refused (``old-signature``) unless the server runs with ``--accept-v1-signatures``, and
even then only on ``POST /hooks/decision``, whose body names the gate.
"""

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

from .auth import AuthError

SENDER_HEADER = "X-Gate-Sender"
TIMESTAMP_HEADER = "X-Gate-Timestamp"
SIGNATURE_HEADER = "X-Gate-Signature-256"
DEFAULT_WINDOW = 300.0
V1_ENDPOINT = ("POST", "/hooks/decision")  # where the old format may be accepted
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"(v2|sha256)=([0-9a-f]{64})")  # one spelling: nothing malleable
V1_REFUSED = (
    "this request is signed in the old form 'sha256=', which covers neither the method "
    "nor the path (a request signed for one gate could decide another): sign it 'v2=' "
    "as docs/webhook.md shows, or, while senders move over, start the server with "
    "--accept-v1-signatures (old signatures then count on POST /hooks/decision only)"
)


def _encoded(text: str) -> str:
    return quote(unquote_to_bytes(text), safe="")


def canonical_path(path: str) -> str:
    """``path`` (as sent, percent-encoded) with each segment decoded and encoded again."""
    return "/".join(_encoded(segment) for segment in path.split("/"))


def canonical_query(query: str) -> str:
    """The ``name=value`` pairs of ``query``, each side decoded and encoded again, sorted."""
    pairs = []
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((_encoded(name.replace("+", " ")), _encoded(value.replace("+", " "))))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


@dataclass(frozen=True)
class Target:
    """What a signature covers besides the timestamp and the body."""

    method: str
    path: str  # as sent (percent-encoded), without the query
    query: str = ""  # as sent, without the '?'

    def canonical(self) -> bytes:
        text = f"{self.method.upper()}\n{canonical_path(self.path)}\n{canonical_query(self.query)}"
        return text.encode()


def message(timestamp: str, target: Target, body: bytes) -> bytes:
    """The bytes a v2 signature is the HMAC of."""
    return b"v2\n" + timestamp.encode() + b"\n" + target.canonical() + b"\n" + body


def signature(secret: bytes, timestamp: str, target: Target, body: bytes) -> str:
    return hmac.new(secret, message(timestamp, target, body), hashlib.sha256).hexdigest()


def signature_v1(secret: bytes, body: bytes, timestamp: str) -> str:
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def sign_request(secret: bytes, body: bytes, timestamp: int, target: Target) -> dict[str, str]:
    """The timestamp and signature headers of a request to ``target`` carrying ``body``."""
    stamp = str(int(timestamp))
    return {
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: f"v2={signature(secret, stamp, target, body)}",
    }


def sign_request_v1(secret: bytes, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers of the old format (for migration tests only)."""
    stamp = str(int(timestamp))
    signed = signature_v1(secret, body, stamp)
    return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: f"sha256={signed}"}


def header(headers: Mapping[str, str], name: str) -> str:
    """The one value of a header, whatever the case of its name."""
    values = [value for key, value in headers.items() if key.lower() == name.lower()]
    if not values:
        raise AuthError(f"missing header {name}", "missing-header")
    if len(values) > 1:
        raise AuthError(f"header {name} is given {len(values)} times", "malformed-header")
    return str(values[0])


def verify_request(
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    target: Target,
    now: float,
    window: float = DEFAULT_WINDOW,
    accept_v1: bool = False,
) -> None:
    """Refuse (AuthError) unless ``headers`` sign exactly ``body`` sent to ``target``,
    within ``window`` s of now. ``accept_v1``: the old format counts too, on
    :data:`V1_ENDPOINT` only.

    The signature is checked before the clock, so a stale or future timestamp means an
    authentic request that is late (a replay?) or early (a skewed clock).
    """
    stamp = header(headers, TIMESTAMP_HEADER)
    signed = header(headers, SIGNATURE_HEADER)
    if not _TIMESTAMP.fullmatch(stamp):
        raise AuthError(f"malformed {TIMESTAMP_HEADER}: expected unix seconds", "malformed-header")
    match = _SIGNATURE.fullmatch(signed)
    if not match:
        raise AuthError(
            f"malformed {SIGNATURE_HEADER}: expected v2=<64 lowercase hex digits>",
            "malformed-header",
        )
    version, given = match[1], match[2]
    if version == "v2":
        expected = signature(secret, stamp, target, body)
    else:
        expected = signature_v1(secret, body, stamp)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise AuthError(
            "bad signature: method, path, body, timestamp or secret differ", "bad-signature"
        )
    endpoint = (target.method.upper(), canonical_path(target.path))
    if version != "v2" and not (accept_v1 and endpoint == V1_ENDPOINT):
        raise AuthError(V1_REFUSED, "old-signature")
    age = now - int(stamp)
    if age > window:
        raise AuthError(
            f"stale request: signed {age:.0f} s ago, over the {window:g} s allowed (a replay?)",
            "stale-timestamp",
        )
    if age < -window:
        raise AuthError(
            f"request signed {-age:.0f} s in the future, over the {window:g} s allowed: "
            "check the sender's clock",
            "future-timestamp",
        )
