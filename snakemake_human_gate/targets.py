"""Where gate notifications go: targets parsed from strings, and the SMTP server.

Per gate (``gate(..., notify=[...])``) and for every gate in
``$SNAKEMAKE_GATE_NOTIFY`` (comma-separated)::

    webhook:https://example.org/gate-events        generic JSON (messages.generic_payload)
    slack:https://hooks.slack.com/services/...     Slack incoming webhook
    mattermost:https://chat.example.org/hooks/...  Mattermost incoming webhook (same payload)
    email:alice@example.org                        SMTP server from $SNAKEMAKE_GATE_SMTP

A URL may be given as ``$NAME`` (or ``${NAME}``): the environment variable of the
Snakemake process that sends it, so that no secret sits in the Snakefile, the
store or a command line. A trailing ``as USER`` puts one-click approve/reject
links into that target's messages, acting as USER (see docs/webhook.md for what
someone who sees such a link can do); without it, messages link to the dashboard only.

Hook URLs are secrets: a Target prints (``str``, ``repr``) and errors show them
redacted, scheme and host only. Pure parsing, cheap to import (Snakefiles check
``notify=`` with it in every job process).
"""

import os
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from urllib.parse import urlsplit

from .errors import InvalidInput

ENV_NOTIFY = "SNAKEMAKE_GATE_NOTIFY"
ENV_SMTP = "SNAKEMAKE_GATE_SMTP"
ENV_SMTP_FROM = "SNAKEMAKE_GATE_SMTP_FROM"
ENV_SMTP_STARTTLS = "SNAKEMAKE_GATE_SMTP_STARTTLS"
ENV_SMTP_USER = "SNAKEMAKE_GATE_SMTP_USER"
ENV_SMTP_PASSWORD = "SNAKEMAKE_GATE_SMTP_PASSWORD"

FORMS = (
    "webhook:https://<host>/<path> (generic JSON), slack:https://hooks.slack.com/services/..., "
    "mattermost:https://<server>/hooks/<id>, email:<address>"
)
HTTP_KINDS = ("webhook", "slack", "mattermost")
# matched whole (fullmatch): '$' would also match before a trailing newline
_EMAIL = re.compile(r"[^@\s<>,;:\"]+@[^@\s<>,;:\"]+")
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_AS = re.compile(r"(.*?)\s+as\s+([A-Za-z0-9._@-]{1,64})")


def redact_url(url: str) -> str:
    """Scheme, host and port only: the path and query of a hook URL are its secret."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return "<unparsable URL>"
    if ":" in host:
        host = f"[{host}]"
    if port is not None:
        host += f":{port}"
    hidden = "/***" if parts.path.strip("/") or parts.query or parts.fragment else ""
    return f"{parts.scheme}://{host}{hidden}"


def _is_email(text: str) -> bool:
    return _EMAIL.fullmatch(text) is not None


def _has_space(text: str) -> bool:
    return any(c.isspace() for c in text)


@dataclass(frozen=True, repr=False)
class Target:
    kind: str  # webhook, slack, mattermost or email
    address: str  # the URL, or the email address
    act_as: str | None = None  # one-click links in its messages act as this user

    @property
    def redacted(self) -> str:
        shown = redact_url(self.address) if self.kind in HTTP_KINDS else self.address
        return f"{self.kind}:{shown}" + (f" as {self.act_as}" if self.act_as else "")

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"Target({self.redacted!r})"


def _shown(item: str) -> str:
    """An item as an error may show it: any URL in it redacted."""
    if urlsplit(item).scheme in ("http", "https"):
        return redact_url(item)
    kind, _, rest = item.partition(":")
    return f"{kind}:{redact_url(rest.strip())}" if "://" in rest else item


def parse_target(
    item: str,
    origin: str = "notify",
    environ: Mapping[str, str] | None = None,
    resolve: bool = True,
) -> Target:
    """One ``kind:address [as USER]`` string; InvalidInput names the item (redacted) and
    the forms. ``$NAME`` addresses are looked up in ``environ`` (default: os.environ),
    or kept as they are with ``resolve=False`` (a syntax check)."""
    if not isinstance(item, str):
        raise InvalidInput(f"{origin}: {item!r} is not a notification target; use {FORMS}")
    text = item.strip()
    act_as = None
    if found := _AS.fullmatch(text):
        text, act_as = found.group(1).strip(), found.group(2)
    kind, sep, address = text.partition(":")
    kind, address = kind.strip().lower(), address.strip()

    def bad(why: str) -> InvalidInput:
        return InvalidInput(f"{origin}: {_shown(text)!r} {why}; use {FORMS}")

    if not sep or kind not in (*HTTP_KINDS, "email"):
        raise bad("does not start with webhook:, slack:, mattermost: or email:")
    if address.startswith("$"):
        var = _VAR.fullmatch(address)
        if var is None:
            raise bad("names no environment variable (write $NAME or ${NAME})")
        name = var.group(1) or var.group(2)
        if not resolve:
            return Target(kind, address, act_as)
        value = (os.environ if environ is None else environ).get(name, "").strip()
        if not value:
            raise InvalidInput(
                f"{origin}: {text!r}: environment variable {name} is not set (it should "
                "hold the address; set it where Snakemake runs)"
            )
        return parse_target(f"{kind}:{value}" + (f" as {act_as}" if act_as else ""), origin)
    if kind == "email":
        if not _is_email(address):
            raise bad("is not an email address")
        return Target(kind, address, act_as)
    try:
        parts = urlsplit(address)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise bad("is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or _has_space(address):
        raise bad("needs an http:// or https:// URL")
    if kind == "mattermost" and "/hooks/" not in parts.path:
        raise bad("is not a Mattermost incoming webhook URL (https://<server>/hooks/<id>)")
    return Target(kind, address, act_as)


def parse_targets(
    items: str | Iterable[str],
    origin: str = "notify",
    environ: Mapping[str, str] | None = None,
    resolve: bool = True,
) -> list[Target]:
    """Targets from strings (one string is one item), without duplicates, in order."""
    if isinstance(items, str):
        items = [items]
    return list(dict.fromkeys(parse_target(i, origin, environ, resolve) for i in items))


def targets_from_env(environ: Mapping[str, str] | None = None) -> list[Target]:
    """The targets of every gate: ``$SNAKEMAKE_GATE_NOTIFY``, comma-separated."""
    value = (os.environ if environ is None else environ).get(ENV_NOTIFY, "")
    return parse_targets([i for i in value.split(",") if i.strip()], origin=f"${ENV_NOTIFY}")


def _flag(value: str, name: str) -> bool:
    text = value.strip().lower()
    if text in ("", "0", "no", "false", "off"):
        return False
    if text in ("1", "yes", "true", "on"):
        return True
    raise InvalidInput(f"${name}: {value!r} is not a yes/no value (use 1 or 0)")


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    starttls: bool = False
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "SmtpConfig | None":
        """``$SNAKEMAKE_GATE_SMTP`` = host[:port] (25, or 587 with STARTTLS), or None."""
        env = os.environ if environ is None else environ
        server = env.get(ENV_SMTP, "").strip()
        if not server:
            return None
        starttls = _flag(env.get(ENV_SMTP_STARTTLS, ""), ENV_SMTP_STARTTLS)
        if server.startswith("["):  # [::1]:2525
            host, _, rest = server[1:].partition("]")
            port_text = rest.removeprefix(":") if rest else ""
        elif server.count(":") == 1:
            host, _, port_text = server.partition(":")
        else:
            host, port_text = server, ""
        try:
            port = int(port_text) if port_text else (587 if starttls else 25)
            if not host or _has_space(host) or not 0 < port < 65536:
                raise ValueError(port)
        except ValueError:
            raise InvalidInput(
                f"${ENV_SMTP}: {server!r} is not host or host:port (e.g. smtp.example.org:587)"
            ) from None
        user = env.get(ENV_SMTP_USER) or None
        password = env.get(ENV_SMTP_PASSWORD) or None
        if (user is None) != (password is None):
            raise InvalidInput(f"${ENV_SMTP_USER} and ${ENV_SMTP_PASSWORD} go together: set both")
        sender = env.get(ENV_SMTP_FROM, "").strip() or f"snakemake-gate@{socket.gethostname()}"
        if not _is_email(parseaddr(sender)[1]):
            raise InvalidInput(f"${ENV_SMTP_FROM}: {sender!r} is not an email address")
        return cls(host, port, sender, starttls, user, password)
