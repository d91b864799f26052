"""Deliver gate notifications without ever failing or stalling the workflow.

``Notifier.notify`` queues and returns; one daemon thread sends, retrying
connection errors, 429 and 5xx with exponential backoff. A retry waits in the
queue, not in a sleep, so one slow target does not hold up the others. Delivery
is at least once: a request that timed out after reaching the receiver is sent
again. Final outcomes go to the injected callbacks (the caller audits them) and
to this module's logger; targets appear in both only redacted.

Where messages go is ``targets.py``, what they say ``messages.py``. ``requests``
and ``smtplib`` are imported when the first message is sent, not with this module.
"""

import copy
import heapq
import itertools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from .errors import InvalidInput
from .messages import (
    LinkMaker,
    check_event,
    email_message,
    generic_payload,
    resolve_links,
    slack_payload,
)
from .record import GateRecord
from .targets import (
    ENV_SMTP,
    SmtpConfig,
    Target,
    parse_target,
    parse_targets,
    redact_url,
    targets_from_env,
)

__all__ = [
    "DeliveryError",
    "Notifier",
    "Retry",
    "SmtpConfig",
    "Target",
    "parse_retry_after",
    "parse_target",
    "parse_targets",
    "redact_url",
    "targets_from_env",
]

logger = logging.getLogger(__name__)

USER_AGENT = "snakemake-human-gate"
_URL_IN_ERROR = re.compile(r"(\burl: )\S+")
CLOSE_GRACE = 0.5  # seconds after close's deadline for the thread to report what it gave up

SuccessCallback = Callable[[str, str, str], None]  # target (redacted), event, gate id
FailureCallback = Callable[[str, str, str, str], None]  # target (redacted), event, gate id, error


@dataclass(frozen=True)
class Retry:
    attempts: int = 4
    backoff: float = 1.0  # seconds before the second attempt; doubles after each failure
    max_retry_after: float = 30.0  # a longer Retry-After falls back to the backoff

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (from 1)."""
        if retry_after is not None and 0 <= retry_after <= self.max_retry_after:
            return retry_after
        return self.backoff * 2 ** (attempt - 1)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), else None."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


class DeliveryError(Exception):
    """One failed attempt; ``transient`` ones are retried."""

    def __init__(self, message: str, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after


def _scrub(text: str, url: str) -> str:
    """``text`` without the secret parts of ``url`` (requests puts them in its errors)."""
    parts = urlsplit(url)
    secrets = [url, f"{parts.path}?{parts.query}" if parts.query else "", parts.path]
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        if secret.strip("/"):
            text = text.replace(secret, "/***" if secret[0] == "/" else redact_url(url))
    return _URL_IN_ERROR.sub(r"\1/***", text)  # urllib3's "with url: <path>", however quoted


@dataclass
class _Notice:
    """One event of one gate, shared by its deliveries; links made on first use, once
    per user they act as (one-click links are personal)."""

    event: str
    record: GateRecord
    now: float
    late: bool = False
    links: dict[str | None, dict[str, str]] = field(default_factory=dict)


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    target: Target = field(compare=False)
    notice: _Notice = field(compare=False)
    attempt: int = field(default=0, compare=False)
    body: Any = field(default=None, compare=False)
    last_error: str = field(default="", compare=False)


class Notifier:
    """Queues notifications and delivers them from one daemon thread (started lazily).

    ``on_success``/``on_failure`` run in that thread; an exception in them is logged.
    Call ``close`` at shutdown: a daemon thread dies with the interpreter.
    """

    def __init__(
        self,
        targets: Iterable[Target] = (),
        *,
        links: LinkMaker | None = None,
        on_success: SuccessCallback | None = None,
        on_failure: FailureCallback | None = None,
        smtp: SmtpConfig | None = None,
        retry: Retry | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.targets = list(dict.fromkeys(targets))
        self.smtp = smtp
        self.check(self.targets)
        self._links = links
        self._on_success = on_success
        self._on_failure = on_failure
        self._retry = retry or Retry()
        self._timeout = timeout
        self._queue: list[_Delivery] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._deadline = 0.0
        self._session: Any = None  # a requests.Session, made and used by the thread

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> "Notifier":
        """Global targets and SMTP server from the environment (InvalidInput names the variable)."""
        return cls(targets_from_env(environ), smtp=SmtpConfig.from_env(environ), **kwargs)

    def check(self, targets: Iterable[Target]) -> None:
        """Refuse email targets without an SMTP server (call it at start-up for each gate)."""
        for target in targets:
            if target.kind == "email" and self.smtp is None:
                raise InvalidInput(
                    f"{target}: email needs an SMTP server: set ${ENV_SMTP}=host[:port]"
                )

    def notify(
        self, event: str, record: GateRecord, targets: Iterable[Target] = (), late: bool = False
    ) -> None:
        """Queue ``event`` of ``record`` for the global targets and ``targets``; never blocks.
        ``late``: the news is sent well after it was due (the message says so)."""
        check_event(event)
        chosen = list(dict.fromkeys([*self.targets, *targets]))
        if not chosen:
            return
        notice = _Notice(event, copy.deepcopy(record), time.time(), late)
        with self._cond:
            if not self._closing:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="gate-notify", daemon=True
                    )
                    self._thread.start()
                for target in chosen:
                    delivery = _Delivery(time.monotonic(), next(self._seq), target, notice)
                    heapq.heappush(self._queue, delivery)
                self._cond.notify()
                return
        for target in chosen:
            self._fail(_Delivery(0.0, 0, target, notice), "not sent: the notifier is closed")

    def close(self, timeout: float = 5.0) -> bool:
        """Deliver what is queued for up to ``timeout`` s, then give up (reported); True if done."""
        with self._cond:
            self._closing = True
            self._deadline = time.monotonic() + timeout
            thread = self._thread
            self._cond.notify_all()
        if thread is None:
            return True
        thread.join(timeout + CLOSE_GRACE)
        return not thread.is_alive()

    # -- the delivery thread ---------------------------------------------------------

    def _run(self) -> None:
        try:
            while (item := self._next()) is not None:
                self._attempt(item)
        finally:
            if self._session is not None:
                self._session.close()

    def _next(self) -> _Delivery | None:
        with self._cond:
            while True:
                now = time.monotonic()
                if self._closing and (not self._queue or now >= self._deadline):
                    abandoned, self._queue = sorted(self._queue), []
                    break
                if self._queue and self._queue[0].due <= now:
                    return heapq.heappop(self._queue)
                waits = [self._queue[0].due - now] if self._queue else []
                if self._closing:
                    waits.append(self._deadline - now)
                self._cond.wait(min(waits) if waits else None)
        for item in abandoned:
            last = f"; last error: {item.last_error}" if item.last_error else ""
            self._fail(item, f"gave up when the notifier closed ({item.attempt} attempt(s){last})")
        return None

    def _attempt(self, item: _Delivery) -> None:
        item.attempt += 1
        gid, event, shown = item.notice.record.id, item.notice.event, item.target.redacted
        try:
            if item.body is None:
                item.body = self._build(item)
            if isinstance(item.body, EmailMessage):
                self._send_email(item.body)
            else:
                self._post(item.target.address, item.body)
        except DeliveryError as e:
            item.last_error = str(e)
            if e.transient and item.attempt < self._retry.attempts:
                wait = self._retry.delay(item.attempt, e.retry_after)
                logger.info(
                    "gate %s: %s notification to %s failed (%s); retrying in %.1f s",
                    gid,
                    event,
                    shown,
                    e,
                    wait,
                )
                item.due = time.monotonic() + wait
                with self._cond:
                    heapq.heappush(self._queue, item)
                    self._cond.notify()
                return
            self._fail(item, f"{e} (attempt {item.attempt} of {self._retry.attempts})")
            return
        except Exception as e:  # a bug here must not end the thread
            logger.debug("notification to %s failed", shown, exc_info=True)
            self._fail(item, _scrub(f"{type(e).__name__}: {e}", item.target.address))
            return
        logger.debug("gate %s: %s notification delivered to %s", gid, event, shown)
        self._report(self._on_success, shown, event, gid)

    def _build(self, item: _Delivery) -> Any:
        notice, kind, act_as = item.notice, item.target.kind, item.target.act_as
        if act_as not in notice.links:
            try:
                made = resolve_links(notice.event, notice.record, self._links, act_as)
            except Exception as e:
                logger.warning("gate %s: no links in notifications: %s", notice.record.id, e)
                made = {}
            notice.links[act_as] = made
        links = notice.links[act_as]
        if kind == "webhook":
            return generic_payload(notice.event, notice.record, links, notice.late)
        if kind in ("slack", "mattermost"):
            return slack_payload(notice.event, notice.record, links, notice.now, notice.late)
        if self.smtp is None:
            raise DeliveryError(f"no SMTP server: set ${ENV_SMTP}=host[:port]", transient=False)
        return email_message(
            notice.event,
            notice.record,
            links,
            to=item.target.address,
            sender=self.smtp.sender,
            now=notice.now,
            late=notice.late,
        )

    def _post(self, url: str, body: dict[str, Any]) -> None:
        import requests

        if self._session is None:
            self._session = requests.Session()
        try:
            response = self._session.post(
                url,
                json=body,
                timeout=self._timeout,
                allow_redirects=False,  # a redirected POST may turn into a GET
                headers={"User-Agent": USER_AGENT},
            )
        except requests.RequestException as e:
            transient = isinstance(e, requests.ConnectionError | requests.Timeout)
            raise DeliveryError(_scrub(str(e), url), transient) from None
        status = response.status_code
        if 200 <= status < 300:
            return
        if 300 <= status < 400:
            where = redact_url(response.headers.get("Location", ""))
            raise DeliveryError(f"HTTP {status}: redirected to {where}; give the final URL", False)
        detail = _scrub(" ".join(response.text.split())[:200], url)
        retry = status == 429 or status >= 500
        retry_after = parse_retry_after(response.headers.get("Retry-After")) if retry else None
        raise DeliveryError(f"HTTP {status}: {detail}", retry, retry_after)

    def _send_email(self, message: EmailMessage) -> None:
        import smtplib
        import ssl

        smtp = self.smtp
        if smtp is None:  # _build refuses this first
            raise DeliveryError(f"no SMTP server: set ${ENV_SMTP}=host[:port]", transient=False)
        try:
            with smtplib.SMTP(smtp.host, smtp.port, timeout=self._timeout) as server:
                if smtp.starttls:
                    server.starttls(context=ssl.create_default_context())
                if smtp.user is not None and smtp.password is not None:
                    server.login(smtp.user, smtp.password)
                server.send_message(message)
        except smtplib.SMTPRecipientsRefused as e:
            codes = [code for code, _ in e.recipients.values()]
            detail = "; ".join(
                f"{addr}: {code} {text.decode(errors='replace')}"
                for addr, (code, text) in e.recipients.items()
            )
            raise DeliveryError(f"refused {detail}", all(400 <= c < 500 for c in codes)) from None
        except smtplib.SMTPResponseException as e:
            text = e.smtp_error
            if isinstance(text, bytes):
                text = text.decode(errors="replace")
            raise DeliveryError(f"SMTP {e.smtp_code}: {text}", 400 <= e.smtp_code < 500) from None
        except (smtplib.SMTPNotSupportedError, ssl.SSLCertVerificationError) as e:
            raise DeliveryError(f"SMTP {smtp.host}:{smtp.port}: {e}", False) from None
        except (smtplib.SMTPException, OSError) as e:
            raise DeliveryError(f"SMTP {smtp.host}:{smtp.port}: {e}", True) from None

    def _fail(self, item: _Delivery, error: str) -> None:
        gid, event, shown = item.notice.record.id, item.notice.event, item.target.redacted
        logger.warning("gate %s: %s notification to %s failed: %s", gid, event, shown, error)
        self._report(self._on_failure, shown, event, gid, error)

    @staticmethod
    def _report(callback: Callable[..., None] | None, *args: str) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:
            logger.exception("notification callback %r failed", callback)
