"""Who is calling, and what a refusal answers and leaves in the audit log.

Plain Python (no FastAPI): :class:`Guard` turns request headers and the raw body into a
:class:`Caller` (bearer token or signed webhook request) or a :class:`Refused`, and
writes every refusal to the store's audit log as a ``refused`` event with the reason,
the client's address, and the gate and user when known.

A signed request is accepted once: its signature is remembered (in the store, for every
server process) while its timestamp is within the window, and the same request again is
refused.

Failed authentications count against the client's address (:class:`FailureLimiter`);
over the limit, every request of that client is answered 429 without looking at its
credentials, and that lock-out is audited once, not once per request (an attacker
could otherwise fill the disk with audit lines).
"""

import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..auth import AuthError, FailureLimiter, TokenStore, TooManyFailures
from ..errors import Conflict, GateError, InvalidInput, NotPermitted, UnknownGate
from ..record import check_gate_id
from ..signatures import DEFAULT_WINDOW, SENDER_HEADER, SIGNATURE_HEADER, Target, header
from ..store import GateStore
from ..webhooks import WebhookSecrets
from .payload import MalformedRequest

logger = logging.getLogger(__name__)

UNKNOWN_ACTOR = "(unknown)"  # not a valid user name: never confused with one
MAX_DETAIL = 300
_FORGET_LOCKOUTS_AT = 10_000


class BodyTooLarge(GateError):
    """The request body is over the server's limit (HTTP 413)."""

    exit_code = 2


class MethodNotAllowed(GateError):
    """The path exists, but not for this method (HTTP 405)."""


class UnsupportedMediaType(GateError):
    """A body that should be JSON is sent as something else (HTTP 415)."""


class ArtifactChanged(Conflict):
    """The artifact's file no longer has the content the gate asked about (HTTP 409)."""


# (error class, HTTP status, code in the answer, reason in the audit log); first match wins
_MAPPING: list[tuple[type[GateError], int, str, str]] = [
    (TooManyFailures, 429, "too-many-failures", "too many failures"),
    (AuthError, 401, "unauthenticated", "unauthenticated"),
    (MalformedRequest, 400, "malformed", "malformed request"),
    (BodyTooLarge, 413, "too-large", "body too large"),
    (UnknownGate, 404, "not-found", "unknown gate"),
    (MethodNotAllowed, 405, "method-not-allowed", "method not allowed"),
    (UnsupportedMediaType, 415, "unsupported-media-type", "unsupported media type"),
    (ArtifactChanged, 409, "artifact-changed", "artifact changed"),
    (Conflict, 409, "already-decided", "already decided"),
    (NotPermitted, 403, "not-permitted", "not permitted"),
    (InvalidInput, 422, "invalid", "invalid"),
]
UNAUTHENTICATED = (
    "authentication required: send 'Authorization: Bearer sgt_...' or a signed request"
)


def known_id(text: str) -> str | None:
    """``text`` if it is a valid gate id (fit for the audit log's gate field), else None."""
    try:
        return check_gate_id(text)
    except InvalidInput:
        return None


def classify(error: GateError) -> tuple[int, str, str]:
    """HTTP status, answer code and audit reason of a refusal."""
    for kind, status, code, reason in _MAPPING:
        if isinstance(error, kind):
            return status, code, reason
    return 400, "refused", "refused"


class Refused(Exception):
    """A refusal ready to answer (already audited)."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}


@dataclass(frozen=True)
class Caller:
    user: str
    via: str  # what the audit log records: api@ADDR, webhook:SENDER@ADDR
    client: str  # the client's address


@dataclass
class Guard:
    store: GateStore
    tokens: TokenStore
    webhooks: WebhookSecrets
    limiter: FailureLimiter
    window: float = DEFAULT_WINDOW  # seconds a signed request stays valid
    accept_v1: bool = False  # signatures of the old form, on POST /hooks/decision only
    _lockouts: dict[str, float] = field(default_factory=dict)  # client -> audited until
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- authentication -------------------------------------------------------------

    def authenticate(
        self, headers: Mapping[str, str], body: bytes | None, client: str, target: Target
    ) -> Caller:
        """The caller, or Refused (401, 413, 429). ``body`` None: it was over the limit;
        ``target``: the request's method, path and query (what a signature covers)."""
        now = time.time()
        self.check_limit(client, now)
        if any(key.lower() == "authorization" for key in headers):
            return self._bearer(headers, body, client, now)
        if any(key.lower() == SENDER_HEADER.lower() for key in headers):
            return self._signed(headers, body, client, now, target)
        raise self.failed(AuthError("no credentials", "no-credentials"), client, now)

    def _bearer(
        self, headers: Mapping[str, str], body: bytes | None, client: str, now: float
    ) -> Caller:
        try:
            scheme, _, token = header(headers, "Authorization").partition(" ")
            if scheme.lower() != "bearer":
                raise AuthError("the Authorization scheme is not Bearer", "malformed-header")
            user = self.tokens.verify(token, now=now)
        except AuthError as e:
            raise self.failed(e, client, now) from None
        caller = Caller(user, f"api@{client}", client)
        if body is None:
            raise self.refuse(BodyTooLarge("the request body is too large"), caller)
        return caller

    def _signed(
        self,
        headers: Mapping[str, str],
        body: bytes | None,
        client: str,
        now: float,
        target: Target,
    ) -> Caller:
        if body is None:  # cannot be verified: as good as a failed attempt
            self.limiter.record_failure(client, now)
            raise self.refuse(
                BodyTooLarge("the request body is too large"),
                Caller(UNKNOWN_ACTOR, f"webhook@{client}", client),
            )
        try:
            sender = self.webhooks.authenticate(
                headers,
                body,
                target=target,
                now=now,
                window=self.window,
                accept_v1=self.accept_v1,
            )
            self.webhooks.first_use(header(headers, SIGNATURE_HEADER), now, self.window)
        except AuthError as e:
            raise self.failed(e, client, now) from None
        return Caller(sender.user, f"webhook:{sender.name}@{client}", client)

    def check_limit(self, client: str, now: float) -> None:
        """Refused (429) while the client is locked out after too many failures."""
        try:
            self.limiter.check(client, now)
        except TooManyFailures as e:
            retry = str(max(1, math.ceil(e.retry_after)))
            if self._first_of_lockout(client, now, e.retry_after):
                self._audit(e, UNKNOWN_ACTOR, f"http@{client}", client, None, retry_after=retry)
            raise Refused(429, "too-many-failures", str(e), {"Retry-After": retry}) from None

    def failed(self, error: AuthError, client: str, now: float) -> Refused:
        """A failed authentication: counted against the client, audited, answered alike."""
        self.limiter.record_failure(client, now)
        self._audit(error, UNKNOWN_ACTOR, f"http@{client}", client, None, auth=error.reason)
        if error.reason == "old-signature":  # authentic, in a form no longer taken: say so
            return Refused(401, error.reason, str(error), {"WWW-Authenticate": "Bearer"})
        return Refused(401, "unauthenticated", UNAUTHENTICATED, {"WWW-Authenticate": "Bearer"})

    def _first_of_lockout(self, client: str, now: float, retry_after: float) -> bool:
        with self._lock:
            if self._lockouts.get(client, 0.0) > now:
                return False
            if len(self._lockouts) >= _FORGET_LOCKOUTS_AT:
                # the newest half of those still locked out stay (the others: audited again)
                current = [(c, t) for c, t in self._lockouts.items() if t > now]
                self._lockouts = dict(current[-(_FORGET_LOCKOUTS_AT // 2) :])
            self._lockouts[client] = now + retry_after
            return True

    # -- refusals ---------------------------------------------------------------------

    def refuse(
        self,
        error: GateError,
        caller: Caller,
        gate: str | None = None,
        *,
        audited: bool = False,
        headers: dict[str, str] | None = None,
        **extra: str,
    ) -> Refused:
        """Audit ``error`` (unless the store did already) and make its answer."""
        status, code, _ = classify(error)
        if not audited:
            self.audit(error, caller, gate, **extra)
        return Refused(status, code, str(error), headers)

    def audit(self, error: GateError, caller: Caller, gate: str | None, **extra: str) -> None:
        """A ``refused`` entry in the audit log (``reason=`` overrides the error's)."""
        self._audit(error, caller.user, caller.via, caller.client, gate, **extra)

    def _audit(
        self,
        error: GateError,
        actor: str,
        via: str,
        client: str,
        gate: str | None,
        **extra: str,
    ) -> None:
        _, _, reason = classify(error)
        logger.info("refused %s from %s: %s", reason, client, error)
        self.store.audit.append(
            "refused",
            gate,
            actor,
            via=via,
            reason=extra.pop("reason", reason),
            client=client,
            detail=str(error)[:MAX_DETAIL],
            **extra,
        )
