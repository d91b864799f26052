"""One-click links for notifications: one action on one gate, once, before a deadline.

A link token carries its own claim, signed by the server::

    <payload>.<tag>   payload = base64url(JSON {"g": gate, "a": action, "u": user,
                                                "exp": unix seconds, "n": random nonce})
                      tag     = base64url(HMAC-SHA256(link key, "sgl1." + payload))

The key is ``<root>/auth/link.key`` (0o600, made on first use); deleting it revokes every
link minted so far. The claim is signed, not encrypted: whoever has the link can read
the gate id and the user name in it.

Someone who sees a link (a forwarded mail, a chat or proxy log) CAN: act once, with
that action only, on that gate only, until it expires; the audit log then names the
user the link was minted for, as if they had clicked. They can also spend the link
before its recipient does. Hence short lifetimes, and links only for users who may
decide (the store still checks approvers and self-approval when the claim is acted on).

They CANNOT: use it on another gate or for the other action (both are signed, and the
server acts on the claim, not on the URL), use it twice (:meth:`LinkSigner.redeem`
records its nonce under a file lock and refuses a nonce already there), forge a link
or extend its expiry (either needs the link key).

Serve :meth:`LinkSigner.peek` on GET (mail scanners open links) and redeem only on the
POST of the confirmation page it shows.
"""

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .auth import AuthError, check_duration, check_name
from .errors import InvalidInput
from .private import AuthFileError, PrivateFiles
from .record import check_gate_id, iso

Action = Literal["approve", "reject"]
ACTIONS: tuple[Action, ...] = ("approve", "reject")
MAX_LINK_LENGTH = 2048
USED_KEPT_AFTER_EXPIRY = 3600.0  # seconds: a clock set back must not revive a used link
_TAG_DOMAIN = b"sgl1."
_B64 = re.compile(r"[A-Za-z0-9_-]{1,2048}")
KEY = "link.key"
USED = "used-links.jsonl"


@dataclass(frozen=True)
class LinkClaim:
    """What a valid link allows: the server acts on these, never on the URL around it."""

    gate: str
    action: Action
    user: str
    nonce: str
    expires: float


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _malformed() -> AuthError:
    return AuthError("malformed link", "malformed-link")


class LinkSigner:
    def __init__(self, root: Path, share: str) -> None:
        self.files = PrivateFiles(root, share)
        self.key_path = self.files.path(KEY)
        self.used_path = self.files.path(USED)

    def mint(self, gate_id: str, action: Action, user: str, ttl: float, now: float) -> str:
        """A link letting ``user`` take ``action`` on the gate once, for ``ttl`` seconds."""
        check_gate_id(gate_id)
        if action not in ACTIONS:
            raise InvalidInput(f"link action {action!r} is not one of {', '.join(ACTIONS)}")
        check_name(user)
        check_duration(ttl, "link ttl")
        claim = {
            "g": gate_id,
            "a": action,
            "u": user,
            "exp": math.ceil(now + ttl),
            "n": secrets.token_urlsafe(16),
        }
        payload = _b64encode(json.dumps(claim, separators=(",", ":"), sort_keys=True).encode())
        return f"{payload}.{self._tag(payload)}"

    def peek(
        self, token: str, now: float, *, gate: str | None = None, action: str | None = None
    ) -> LinkClaim:
        """The claim of a valid, unexpired link, without spending it (used or not)."""
        if not isinstance(token, str) or len(token) > MAX_LINK_LENGTH:
            raise _malformed()
        payload, _, tag = token.partition(".")
        if not _B64.fullmatch(payload) or not _B64.fullmatch(tag):
            raise _malformed()
        if not hmac.compare_digest(self._tag(payload).encode(), tag.encode()):
            raise AuthError("link signature does not match: altered, or not made here", "bad-link")
        claim = _parse(payload)
        if now >= claim.expires:
            raise AuthError(f"link expired at {iso(claim.expires)}", "expired-link")
        if gate is not None and claim.gate != gate:
            raise AuthError(f"this link is for gate {claim.gate}, not {gate}", "wrong-gate")
        if action is not None and claim.action != action:
            raise AuthError(f"this link is to {claim.action}, not to {action}", "wrong-action")
        return claim

    def redeem(
        self, token: str, now: float, *, gate: str | None = None, action: str | None = None
    ) -> LinkClaim:
        """Spend the link: its claim the first time, AuthError ever after.

        ``gate`` and ``action``, when given, must match the claim; a mismatch refuses the
        link without spending it.
        """
        claim = self.peek(token, now, gate=gate, action=action)
        with self.files.lock("links"):
            used = self._used(now)
            if any(entry["n"] == claim.nonce for entry in used):
                raise AuthError("link already used", "used-link")
            used.append({"n": claim.nonce, "exp": claim.expires, "g": claim.gate, "at": now})
            lines = "".join(json.dumps(entry, sort_keys=True) + "\n" for entry in used)
            self.files.write(USED, lines.encode())
        return claim

    def _used(self, now: float) -> list[dict[str, Any]]:
        """The spent links still worth remembering (the others have long expired)."""
        raw = self.files.read(USED) or b""
        used = []
        for number, line in enumerate(raw.splitlines(), start=1):
            try:
                entry = json.loads(line)
                expires = float(entry["exp"])
                if not isinstance(entry["n"], str):
                    raise TypeError(entry["n"])
            except (ValueError, KeyError, TypeError):
                # fail closed: skipping the line could let its link be used again
                raise AuthFileError(
                    f"{self.used_path} line {number} is corrupt: repair or remove the line "
                    "(removing it lets that link be used again until it expires)"
                ) from None
            if expires + USED_KEPT_AFTER_EXPIRY > now:
                used.append(entry)
        return used

    def _tag(self, payload: str) -> str:
        digest = hmac.new(self._key(), _TAG_DOMAIN + payload.encode(), hashlib.sha256).digest()
        return _b64encode(digest)

    def _key(self) -> bytes:
        """The link key, made on first use (read each time: deleting it revokes links)."""
        raw = self.files.read(KEY)
        if raw is None:
            with self.files.lock("links"):
                raw = self.files.read(KEY)
                if raw is None:
                    raw = secrets.token_hex(32).encode()
                    self.files.write(KEY, raw + b"\n")
        try:
            key = bytes.fromhex(raw.decode().strip())
        except (UnicodeDecodeError, ValueError):
            key = b""
        if len(key) < 32:
            raise AuthFileError(
                f"{self.key_path} is not a link key (64 hex digits): remove it to make a "
                "new one (which revokes every link minted so far)"
            )
        return key


def _parse(payload: str) -> LinkClaim:
    """The claim in a payload whose tag was verified (so made by mint)."""
    try:
        data = json.loads(_b64decode(payload))
        claim = LinkClaim(data["g"], data["a"], data["u"], data["n"], float(data["exp"]))
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise _malformed() from None
    if claim.action not in ACTIONS or not all(
        isinstance(v, str) for v in (claim.gate, claim.user, claim.nonce)
    ):
        raise _malformed()
    return claim
