"""Who is asking: bearer tokens, private secret files, and a limiter of failed attempts.

The gate server (``snakemake-gate serve``) knows a caller three ways, each ending in a
user name that the store then checks against the gate's approvers and writes to the
audit log (authentication itself never decides anything):

- a person's bearer token (``Authorization: Bearer sgt_...``): :class:`TokenStore`;
- a signed request from a configured webhook sender: :mod:`.webhooks`;
- a signed one-click link from a notification: :mod:`.links`.

The secrets live in ``<store>/auth/``, which belongs to the user who runs the server
and stays private whatever the store's share mode (:mod:`.private`).

A refusal raises :class:`AuthError`, whose ``reason`` is a short fixed code for logs and
the audit log; the server should answer every refusal alike (401), so that a caller
learns nothing from a failed attempt.
"""

import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import GateError, InvalidInput
from .private import AuthFileError, PrivateFiles
from .record import TIMEOUT_ACTOR

__all__ = ["AuthError", "AuthFileError", "FailureLimiter", "TokenStore", "TooManyFailures"]
TOKEN_PREFIX = "sgt_"
_TOKEN = re.compile(r"sgt_[A-Za-z0-9_-]{43}")  # 32 random bytes, urlsafe base64
_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
TOKENS_SCHEMA = 1
TOKENS = "tokens.json"


class AuthError(GateError):
    """Authentication refused (exit 4, as NotPermitted); ``reason`` is a fixed code."""

    exit_code = 4

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class TooManyFailures(AuthError):
    """The client failed too often lately; it may try again after ``retry_after`` s."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(
            f"too many failed attempts, retry in {math.ceil(retry_after)} s",
            "too-many-failures",
        )
        self.retry_after = retry_after


def check_name(name: str, what: str = "user name") -> str:
    """Users and webhook senders: 1 to 64 letters, digits, '.', '_', '@' or '-'."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"invalid {what} {name!r}: use 1 to 64 letters, digits, '.', '_', '@' or '-'"
        )
    if name == TIMEOUT_ACTOR:
        raise InvalidInput(
            f"{what} {name!r} is reserved: the audit log names gate timeouts with it"
        )
    return name


def check_duration(seconds: float, what: str) -> float:
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidInput(f"{what} must be a positive number of seconds, got {seconds!r}")
    return seconds


# -- bearer tokens --------------------------------------------------------------------


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_id(token: str) -> str:
    """A token's short public id (8 hex digits of its digest: names it, reveals nothing)."""
    return token_digest(token)[:8]


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: everything but the secret."""

    id: str
    user: str
    label: str
    created: float
    expires: float | None

    def expired(self, now: float) -> bool:
        return self.expires is not None and now >= self.expires


def read_entries(
    files: PrivateFiles, name: str, key: str, required: set[str]
) -> dict[str, dict[str, Any]]:
    """The ``key`` mapping of a private JSON file, each entry a dict with ``required``
    keys; AuthFileError otherwise (entries hold secrets: they are not shown)."""
    entries = files.read_json(name, key)
    for entry in entries.values():
        if not (isinstance(entry, dict) and required <= entry.keys()):
            raise AuthFileError(f"{files.path(name)} holds a malformed {key} entry")
    return entries


def write_entries(
    files: PrivateFiles, name: str, key: str, schema: int, entries: dict[str, Any]
) -> None:
    """Replace the private JSON file that :func:`read_entries` reads."""
    files.write_json(name, {"schema": schema, key: entries})


class TokenStore:
    """Per-user bearer tokens in ``<root>/auth/tokens.json``, stored as SHA-256 digests.

    A token is 256 random bits, so a plain digest is enough (no salt, no slow hash):
    the file lets nobody in. The plaintext is shown once, by :meth:`create`.
    Every :meth:`verify` reads the file, so a revocation counts at once.
    """

    def __init__(self, root: Path, share: str) -> None:
        self.files = PrivateFiles(root, share)
        self.path = self.files.path(TOKENS)

    def create(
        self,
        user: str,
        label: str = "",
        expires_in: float | None = None,
        *,
        now: float | None = None,
    ) -> str:
        """A new token for ``user``; the only time its plaintext exists."""
        check_name(user)
        if len(label) > 200 or not label.isprintable():
            raise InvalidInput(f"token label {label[:40]!r}...: use up to 200 printable characters")
        if expires_in is not None:
            check_duration(expires_in, "expires_in")
        now = time.time() if now is None else now
        with self.files.lock(TOKENS):
            tokens = self._tokens()
            token = TOKEN_PREFIX + secrets.token_urlsafe(32)
            while token_id(token) in tokens:  # 1 in 4 billion per existing token
                token = TOKEN_PREFIX + secrets.token_urlsafe(32)
            tokens[token_id(token)] = {
                "sha256": token_digest(token),
                "user": user,
                "label": label,
                "created": now,
                "expires": None if expires_in is None else now + expires_in,
            }
            self._save(tokens)
        return token

    def verify(self, token: str, *, now: float | None = None) -> str:
        """The user the token belongs to; AuthError if unknown, revoked or expired."""
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            raise AuthError("malformed token: expected 'sgt_' and 43 characters", "bad-token")
        digest = token_digest(token).encode()
        found = None
        for tid, entry in self._tokens().items():  # every entry: no early exit
            if hmac.compare_digest(entry["sha256"].encode(), digest):
                found = self._info(tid, entry)
        if found is None:
            raise AuthError("unknown or revoked token", "unknown-token")
        if found.expired(time.time() if now is None else now):
            raise AuthError(f"token {found.id} has expired", "expired-token")
        return found.user

    def revoke(self, token_id: str) -> TokenInfo:
        """Remove a token (by its id, as :meth:`list` shows it); what it was."""
        with self.files.lock(TOKENS):
            tokens = self._tokens()
            if token_id not in tokens:
                raise InvalidInput(f"no token {token_id!r}: see 'snakemake-gate token list'")
            info = self._info(token_id, tokens.pop(token_id))
            self._save(tokens)
        return info

    def _tokens(self) -> dict[str, dict[str, Any]]:
        return read_entries(self.files, TOKENS, "tokens", {"sha256", "user", "created"})

    def _save(self, tokens: dict[str, dict[str, Any]]) -> None:
        write_entries(self.files, TOKENS, "tokens", TOKENS_SCHEMA, tokens)

    @staticmethod
    def _info(tid: str, entry: dict[str, Any]) -> TokenInfo:
        return TokenInfo(
            tid, entry["user"], entry.get("label", ""), entry["created"], entry.get("expires")
        )

    def list(self) -> list[TokenInfo]:  # last: the name hides the builtin in the class
        """Every token, oldest first, without secrets."""
        infos = [self._info(tid, entry) for tid, entry in self._tokens().items()]
        return sorted(infos, key=lambda info: info.created)


# -- failed attempts --------------------------------------------------------------------


class FailureLimiter:
    """At most ``max_failures`` failed authentications per client within ``window`` s.

    The server calls :meth:`check` before authenticating a client (an address) and
    :meth:`record_failure` when that fails. Memory stays bounded: a client is forgotten
    once its last failure is older than the window, at most ``max_failures`` times are
    kept per client, and at most ``max_clients`` clients (the least recently failing
    go first). Thread-safe.
    """

    def __init__(self, max_failures: int, window: float, max_clients: int = 10_000) -> None:
        if max_failures < 1 or max_clients < 1:
            raise InvalidInput(
                f"max_failures and max_clients must be at least 1, got {max_failures}, "
                f"{max_clients}"
            )
        self.max_failures = max_failures
        self.window = check_duration(window, "window")
        self.max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()  # latest last
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Clients remembered now."""
        return len(self._failures)

    def check(self, client: str, now: float) -> None:
        """TooManyFailures (an AuthError) while the client is over the limit."""
        with self._lock:
            self._forget_stale(now)
            times = self._failures.get(client)
            if times is None:
                return
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.max_failures:
                raise TooManyFailures(times[0] + self.window - now)

    def record_failure(self, client: str, now: float) -> None:
        with self._lock:
            times = self._failures.pop(client, None) or deque(maxlen=self.max_failures)
            times.append(now)
            self._failures[client] = times
            self._forget_stale(now)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)

    def _forget_stale(self, now: float) -> None:
        while self._failures:
            client, times = next(iter(self._failures.items()))
            if times and times[-1] > now - self.window:
                return
            del self._failures[client]
