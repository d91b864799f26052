"""``snakemake-gate`` commands of the gate server: its tokens and webhook senders, and
``serve`` itself (FastAPI is imported only when ``serve`` runs)."""

import argparse
import json
import sys
import time
from typing import Any

from .auth import TokenStore, token_id
from .cli_common import open_store
from .errors import GateError, InvalidInput
from .record import iso
from .spec import parse_duration
from .store import current_user, resolve_dir
from .webhooks import WebhookSecrets

SERVER_EXTRA = "pip install 'snakemake-executor-plugin-hybrid[server]'"
SERVER_PACKAGES = ("fastapi", "uvicorn", "starlette", "pydantic")


def add_server_commands(sub: Any) -> None:
    """Add ``token``, ``webhook`` and ``serve`` to the subcommands ``sub``."""
    p = sub.add_parser("token", help="bearer tokens for the gate server: create, list, revoke")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser("create", help="a new token acting as USER (printed once)")
    a.add_argument("user")
    a.add_argument("--label", default="", help="what the token is for (shown by list)")
    a.add_argument("--expires", help="lifetime: seconds, or 90m, 12h, 30d, 1w (default: never)")
    a.set_defaults(func=cmd_token_create)
    a = actions.add_parser("list", help="the tokens, without secrets")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_token_list)
    a = actions.add_parser("revoke", help="revoke a token by the id list shows")
    a.add_argument("id")
    a.set_defaults(func=cmd_token_revoke)

    p = sub.add_parser("webhook", help="senders of signed requests: add, list, remove")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser("add", help="a new sender acting as USER (prints its secret once)")
    a.add_argument("name")
    a.add_argument("--user", required=True, help="whom the audit log names for its requests")
    a.set_defaults(func=cmd_webhook_add)
    a = actions.add_parser("list", help="the senders and the users they act as")
    a.set_defaults(func=cmd_webhook_list)
    a = actions.add_parser("remove", help="remove a sender (its secret stops working)")
    a.add_argument("name")
    a.set_defaults(func=cmd_webhook_remove)

    p = sub.add_parser(
        "serve", help="serve the store over HTTP: REST API, webhooks, one-click links, dashboard"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback)")
    p.add_argument("--port", type=int, default=8000, help="0: any free port (announced)")
    p.add_argument(
        "--public-url",
        help="the address users reach the server at (in links and artifact URLs), "
        "e.g. https://gates.example.org",
    )
    p.add_argument("--tls-cert", help="certificate chain (PEM) to serve HTTPS with")
    p.add_argument("--tls-key", help="its private key (PEM)")
    p.add_argument("--max-body", type=int, default=65536, help="largest request body, bytes")
    p.add_argument(
        "--max-failures",
        type=int,
        default=20,
        help="failed authentications a client may make per --failure-window before 429",
    )
    p.add_argument("--failure-window", type=float, default=60.0, help="seconds")
    p.add_argument("--workers", type=int, default=1, help="server processes (needs --port)")
    p.add_argument(
        "--accept-v1-signatures",
        action="store_true",
        help="while senders move to 'v2=' signatures: also accept the old 'sha256=' form "
        "(not bound to method and path) on POST /hooks/decision",
    )
    p.add_argument(
        "--forwarded-allow-ips",
        help="reverse proxies (comma-separated addresses) whose X-Forwarded-For names the "
        "client (default: none; the connecting address counts)",
    )
    p.set_defaults(func=cmd_serve)


def _expires(text: str | None) -> float | None:
    try:
        return parse_duration(text)
    except InvalidInput:
        raise InvalidInput(
            f"--expires {text!r}: give a positive number of seconds, or one with "
            "m, h, d or w (e.g. '30d')"
        ) from None


def cmd_token_create(args: argparse.Namespace) -> int:
    store = open_store(args)
    token = TokenStore(store.root, store.share).create(
        args.user, args.label, _expires(args.expires)
    )
    tid = token_id(token)
    store.audit.append("token-created", None, current_user(), user=args.user, token=tid)
    print(f"token {tid} for {args.user} (shown once; keep it secret):", file=sys.stderr)
    print(token)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    store = open_store(args)
    infos = TokenStore(store.root, store.share).list()
    if args.json:
        print(json.dumps([vars(i) for i in infos], indent=1))
        return 0
    now = time.time()
    for i in infos:
        expires = iso(i.expires) if i.expires is not None else "never"
        state = " (expired)" if i.expired(now) else ""
        print(f"{i.id}  {i.user:<16} {iso(i.created)}  expires {expires}{state}  {i.label}")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    store = open_store(args)
    info = TokenStore(store.root, store.share).revoke(args.id)
    store.audit.append("token-revoked", None, current_user(), user=info.user, token=info.id)
    print(f"token {info.id} of {info.user} revoked")
    return 0


def cmd_webhook_add(args: argparse.Namespace) -> int:
    store = open_store(args)
    secret = WebhookSecrets(store.root, store.share).add(args.name, args.user)
    store.audit.append("webhook-added", None, current_user(), sender=args.name, user=args.user)
    print(f"sender {args.name} acts as {args.user}; its secret (shown once):", file=sys.stderr)
    print(secret)
    return 0


def cmd_webhook_list(args: argparse.Namespace) -> int:
    store = open_store(args)
    for name, user in WebhookSecrets(store.root, store.share).names().items():
        print(f"{name:<24} {user}")
    return 0


def cmd_webhook_remove(args: argparse.Namespace) -> int:
    store = open_store(args)
    WebhookSecrets(store.root, store.share).remove(args.name)
    store.audit.append("webhook-removed", None, current_user(), sender=args.name)
    print(f"sender {args.name} removed")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        from .server.run import AppOptions, ServeOptions, serve
    except ModuleNotFoundError as e:
        missing = (e.name or "").partition(".")[0]
        if missing not in SERVER_PACKAGES:
            raise
        raise GateError(f"serve needs {missing}, which is not installed: {SERVER_EXTRA}") from None
    app = AppOptions(
        str(resolve_dir(args.dir)),
        public_url=args.public_url,
        max_body=args.max_body,
        max_failures=args.max_failures,
        failure_window=args.failure_window,
        accept_v1_signatures=args.accept_v1_signatures,
    )
    options = ServeOptions(
        app,
        host=args.host,
        port=args.port,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        workers=args.workers,
        forwarded_allow_ips=args.forwarded_allow_ips,
    )
    serve(options, lambda text: print(f"snakemake-gate: {text}", file=sys.stderr, flush=True))
    return 0
