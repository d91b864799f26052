"""Signed webhook requests (GitHub/Slack style) and the senders allowed to make them.

A sender (a chat bot, a CI job) signs ``f"{timestamp}.".encode() + body`` with
HMAC-SHA256 under its secret and sends::

    X-Gate-Sender: <name>
    X-Gate-Timestamp: <unix seconds>
    X-Gate-Signature-256: sha256=<64 lowercase hex digits>

The HMAC key is the secret exactly as :meth:`WebhookSecrets.add` returned it (its ASCII
bytes, as GitHub does), so a shell sender needs only
``printf '%s.%s' "$TS" "$BODY" | openssl dgst -sha256 -hmac "$SECRET"``.

The signature covers the timestamp, so an old request cannot be given a fresh one, and
requests more than ``window`` seconds from the server's clock are refused. Within the
window a captured request could be replayed (harmless for a decision, write-once, but it
could restore a vote its sender changed meanwhile), so :meth:`WebhookSecrets.first_use`
remembers each accepted signature until its timestamp is out of the window: one empty
file per signature in ``<root>/auth/seen-signatures/``, made with ``O_EXCL``, so every
server process sees it, and so does a restarted server.

Secrets are stored as they are (HMAC needs them) in ``<root>/auth/webhooks.json``, 0o600.
"""

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .auth import AuthError, check_name, read_entries, write_entries
from .errors import InvalidInput
from .private import SECRET_FILE_MODE, PrivateFiles

SENDER_HEADER = "X-Gate-Sender"
TIMESTAMP_HEADER = "X-Gate-Timestamp"
SIGNATURE_HEADER = "X-Gate-Signature-256"
DEFAULT_WINDOW = 300.0
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"sha256=([0-9a-f]{64})")  # one spelling: no malleable variants
WEBHOOKS_SCHEMA = 1
SENDERS = "webhooks.json"
SEEN = "seen-signatures"


def signature(secret: bytes, body: bytes, timestamp: str) -> str:
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def sign_request(secret: bytes, body: bytes, timestamp: int) -> dict[str, str]:
    """The timestamp and signature headers of a request carrying ``body``."""
    stamp = str(int(timestamp))
    return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: f"sha256={signature(secret, body, stamp)}"}


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
    now: float,
    window: float = DEFAULT_WINDOW,
) -> None:
    """Refuse (AuthError) unless ``headers`` sign exactly ``body``, within ``window`` s of now.

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
            f"malformed {SIGNATURE_HEADER}: expected sha256=<64 lowercase hex digits>",
            "malformed-header",
        )
    if not hmac.compare_digest(signature(secret, body, stamp).encode(), match[1].encode()):
        raise AuthError("bad signature: body, timestamp or secret differ", "bad-signature")
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


@dataclass(frozen=True)
class WebhookSender:
    name: str
    secret: bytes  # the HMAC key
    user: str  # whom the audit log names for this sender's requests
    created: float


class WebhookSecrets:
    """The configured senders: name -> secret and user, in ``<root>/auth/webhooks.json``."""

    def __init__(self, root: Path, share: str) -> None:
        self.files = PrivateFiles(root, share)
        self.path = self.files.path(SENDERS)
        self.seen = self.files.path(SEEN)
        self._pruned = 0.0  # when seen signatures were last pruned (by this process)

    def add(self, name: str, user: str, *, now: float | None = None) -> str:
        """A new sender acting as ``user``; its secret (64 hex digits), for the sender."""
        check_name(name, "sender name")
        check_name(user)
        secret = secrets.token_hex(32)
        with self.files.lock(SENDERS):
            senders = self._senders()
            if name in senders:
                raise InvalidInput(f"sender {name!r} exists: remove it first to replace it")
            created = time.time() if now is None else now
            senders[name] = {"secret": secret, "user": user, "created": created}
            self._save(senders)
        return secret

    def get(self, name: str) -> WebhookSender:
        """The sender; AuthError if there is none of that name (a request names it)."""
        entry = self._senders().get(name) if isinstance(name, str) else None
        if entry is None:
            raise AuthError(f"unknown sender {name!r}", "unknown-sender")
        return WebhookSender(name, entry["secret"].encode(), entry["user"], entry["created"])

    def remove(self, name: str) -> None:
        with self.files.lock(SENDERS):
            senders = self._senders()
            if senders.pop(name, None) is None:
                raise InvalidInput(f"no sender {name!r}: see 'snakemake-gate webhook list'")
            self._save(senders)

    def names(self) -> dict[str, str]:
        """Sender name -> the user it acts as (no secrets)."""
        return {name: entry["user"] for name, entry in sorted(self._senders().items())}

    def authenticate(
        self,
        headers: Mapping[str, str],
        body: bytes,
        now: float,
        window: float = DEFAULT_WINDOW,
    ) -> WebhookSender:
        """The sender the request names, once its signature and timestamp are verified."""
        sender = self.get(header(headers, SENDER_HEADER))
        verify_request(sender.secret, headers, body, now, window)
        return sender

    def first_use(self, signed: str, now: float, window: float = DEFAULT_WINDOW) -> None:
        """Refuse (AuthError) a verified request's signature seen before: a replay.

        A signature is kept for twice the window after it was accepted (its timestamp
        may have been up to a window ahead); after that its request is refused as stale.
        """
        name = hashlib.sha256(signed.encode()).hexdigest()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with self.files.dir(SEEN, create=True) as seen:
            try:
                os.close(os.open(name, flags, SECRET_FILE_MODE, dir_fd=seen))
            except FileExistsError:
                raise AuthError("this signed request was received before", "replayed") from None
            if now - self._pruned > window:
                self._pruned = now
                self._forget_seen(seen, before=now - 2 * window)

    @staticmethod
    def _forget_seen(seen: int, before: float) -> None:
        with os.scandir(seen) as entries:
            for entry in entries:
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat(follow_symlinks=False).st_mtime < before:
                        os.unlink(entry.name, dir_fd=seen)

    def _senders(self) -> dict[str, dict[str, Any]]:
        return read_entries(self.files, SENDERS, "senders", {"secret", "user", "created"})

    def _save(self, senders: dict[str, dict[str, Any]]) -> None:
        write_entries(self.files, SENDERS, "senders", WEBHOOKS_SCHEMA, senders)
