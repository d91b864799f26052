"""The senders allowed to make signed requests (GitHub/Slack style), and the memory of
the signatures accepted. What a request signs, and its check: :mod:`.signatures`.

The HMAC key is the secret exactly as :meth:`WebhookSecrets.add` returned it (its ASCII
bytes, as GitHub does), so a shell sender needs only ``openssl dgst -sha256 -hmac``.

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
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .auth import AuthError, check_name, read_entries, write_entries
from .errors import InvalidInput
from .private import SECRET_FILE_MODE, PrivateFiles
from .signatures import DEFAULT_WINDOW, SENDER_HEADER, Target, header, verify_request

WEBHOOKS_SCHEMA = 1
SENDERS = "webhooks.json"
SEEN = "seen-signatures"


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
        *,
        target: Target,
        now: float,
        window: float = DEFAULT_WINDOW,
        accept_v1: bool = False,
    ) -> WebhookSender:
        """The sender the request names, once its signature and timestamp are verified."""
        sender = self.get(header(headers, SENDER_HEADER))
        verify_request(
            sender.secret,
            headers,
            body,
            target=target,
            now=now,
            window=window,
            accept_v1=accept_v1,
        )
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
