"""Run the gate server under uvicorn (what ``snakemake-gate serve`` calls).

The socket is bound here (so that ``--port 0`` works and the real address is
announced); one worker (the default) serves it in this process; with ``--workers N``
this process accepts and deals the connections to N forked workers in turn (``deal``):
the store is safe for them (file locks), but each keeps its own count of failed
authentications.
"""

import copy
import ipaddress
import logging
import os
import re
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from fastapi import FastAPI

from ..errors import InvalidInput
from .app import DEFAULT_FAILURE_WINDOW, DEFAULT_MAX_BODY, DEFAULT_MAX_FAILURES, create_app
from .deal import serve_dealt

SHUTDOWN_GRACE = 10  # seconds open connections get to finish after Ctrl-C or SIGTERM
_LINK_PATH = re.compile(r"/l/[^ ?\"]*")


@dataclass(frozen=True)
class AppOptions:
    """What ``create_app`` needs (each worker process makes its own app)."""

    store_dir: str
    public_url: str | None = None
    max_body: int = DEFAULT_MAX_BODY
    max_failures: int = DEFAULT_MAX_FAILURES
    failure_window: float = DEFAULT_FAILURE_WINDOW
    accept_v1_signatures: bool = False

    def create(self) -> FastAPI:
        options = asdict(self)
        return create_app(options.pop("store_dir"), **options)


@dataclass(frozen=True)
class ServeOptions:
    app: AppOptions
    host: str = "127.0.0.1"
    port: int = 8000
    tls_cert: str | None = None
    tls_key: str | None = None
    workers: int = 1
    forwarded_allow_ips: str | None = None  # trust X-Forwarded-For from these proxies
    log_level: str = "info"

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"


def check(options: ServeOptions) -> list[str]:
    """Refuse options that cannot work (InvalidInput naming the flag); warnings to show."""
    if (options.tls_cert is None) != (options.tls_key is None):
        raise InvalidInput("--tls-cert and --tls-key go together: give both or neither")
    for flag, path in (("--tls-cert", options.tls_cert), ("--tls-key", options.tls_key)):
        if path is not None and not os.path.isfile(path):
            raise InvalidInput(f"{flag} {path}: no such file")
    if options.workers < 1:
        raise InvalidInput(f"--workers must be at least 1, got {options.workers}")
    public = urlsplit(options.app.public_url or "https://x")
    if public.scheme not in ("http", "https") or not public.netloc or public.query:
        raise InvalidInput(
            f"--public-url {options.app.public_url!r}: give the server's address as users "
            "reach it, e.g. https://gates.example.org or https://example.org/gates"
        )
    if options.app.max_body < 1:
        raise InvalidInput(f"--max-body must be a positive number, got {options.app.max_body}")
    warnings = []
    if not options.tls_cert and not _loopback(options.host):
        warnings.append(
            f"serving plain HTTP on {options.host}: tokens, signatures and links cross the "
            "network unencrypted; use --tls-cert/--tls-key or a reverse proxy with TLS "
            "(docs/webhook.md)"
        )
    if options.app.accept_v1_signatures:
        warnings.append(
            "accepting old 'sha256=' signatures on POST /hooks/decision: they do not bind "
            "the method and path; move every sender to 'v2=' (docs/webhook.md), then drop "
            "--accept-v1-signatures"
        )
    return warnings


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RedactLinks(logging.Filter):
    """Keep one-click link tokens out of the access log (they act as a password)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _LINK_PATH.sub("/l/***", a) if isinstance(a, str) else a for a in record.args
            )
        return True


def log_config(level: str) -> dict[str, Any]:
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {"redact_links": {"()": f"{__name__}.RedactLinks"}}
    config["handlers"]["access"]["filters"] = ["redact_links"]
    config["loggers"]["uvicorn"]["level"] = level.upper()
    return config


def _uvicorn_options(options: ServeOptions) -> dict[str, Any]:
    return {
        "ssl_certfile": options.tls_cert,
        "ssl_keyfile": options.tls_key,
        "proxy_headers": options.forwarded_allow_ips is not None,
        "forwarded_allow_ips": options.forwarded_allow_ips,
        "log_config": log_config(options.log_level),
        "server_header": False,
        "timeout_graceful_shutdown": SHUTDOWN_GRACE,
    }


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it a keep-alive client waits 40 ms per answer (Nagle + delayed ACK)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # connections wait in the backlog from now on, not refused
    except OSError as e:
        sock.close()
        raise InvalidInput(f"cannot listen on {host}:{port}: {e.strerror}") from None
    return sock


def serve(options: ServeOptions, announce: Callable[[str], None]) -> None:
    """Serve until interrupted; ``announce`` gets the address (and any warnings)."""
    for warning in check(options):
        announce(f"warning: {warning}")
    app = options.app.create()  # in this process first: a bad store fails here, once
    sock = bind(options.host, options.port)
    host = f"[{options.host}]" if ":" in options.host else options.host
    workers = f" with {options.workers} worker processes" if options.workers > 1 else ""
    announce(
        f"serving {options.app.store_dir} at "
        f"{options.scheme}://{host}:{sock.getsockname()[1]}/{workers}"
    )
    if options.workers == 1:
        uvicorn.Server(_config(options, app)).run(sockets=[sock])
    else:  # each worker makes its own app
        serve_dealt(sock, options.workers, lambda: _config(options, options.app.create()))


def _config(options: ServeOptions, app: FastAPI) -> uvicorn.Config:
    return uvicorn.Config(app, **_uvicorn_options(options))
