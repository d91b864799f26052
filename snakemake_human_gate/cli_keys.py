"""``snakemake-gate key``: signing keys for the audit log (``signing.py``)."""

import argparse
import base64
import binascii
import os
import stat
import sys
from typing import Any

from .cli_common import open_store
from .errors import InvalidInput
from .signing import (
    check_registrar,
    current_user,
    key_id,
    key_path,
    make_signer,
    owner,
    read_registry,
    register,
)
from .store import GateStore


def add_key_commands(sub: Any) -> None:
    """Add ``key create``, ``key add`` and ``key list`` to the subcommands ``sub``."""
    p = sub.add_parser("key", help="signing keys of audit entries: create, add, list")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser(
        "create",
        help="your signing key (made if missing; its public half printed); the store's "
        "owner registers it at once",
    )
    a.add_argument("--server", action="store_true", help=SERVER_HELP)
    a.set_defaults(func=cmd_key_create)
    a = actions.add_parser("add", help="register USER's public key (the store's owner only)")
    a.add_argument("user")
    a.add_argument("public_key", help="as 'snakemake-gate key create' printed it (base64)")
    a.add_argument("--server", action="store_true", help=SERVER_HELP)
    a.set_defaults(func=cmd_key_add)
    a = actions.add_parser("list", help="the registered public keys")
    a.set_defaults(func=cmd_key_list)


SERVER_HELP = (
    "the key of the user who runs 'snakemake-gate serve': it may sign entries that name "
    "the users the server authenticated"
)


def _register(store: GateStore, user: str, public: bytes, server: bool) -> None:
    check_registrar(store.tree, user, public)  # before the entry that says it is done
    first = read_registry(store.tree) is None
    entry = store.audit.append(
        "key-added", None, current_user(), user=user, key=key_id(public), server=server
    )
    key = register(store.tree, user, public, server, next_seq=entry["seq"] + 1)
    print(f"key {key} of {user} registered{' (server)' if server else ''}")
    if first:
        print(f"audit entries must be signed from entry {entry['seq'] + 1} on")
        if store.share == "group-write":  # members may no longer move keys/ (or others) away
            os.chmod(store.root, os.stat(store.root).st_mode | stat.S_ISVTX)
            print(f"{store.root} is now sticky: members cannot rename what they do not own")


def cmd_key_create(args: argparse.Namespace) -> int:
    store = open_store(args)
    user = current_user()
    existed = key_path().exists()
    signer = make_signer(user)
    public = base64.b64encode(signer.public).decode()
    where = "your key" if existed else "new key"
    print(f"{where} {key_path()} (keep it to yourself); public key of {user}:", file=sys.stderr)
    print(public)
    if os.geteuid() == owner(store.tree):
        _register(store, user, signer.public, args.server)
    else:
        print(
            f"the store's owner registers it with: snakemake-gate --dir {store.root} "
            f"key add {user} {public}" + (" --server" if args.server else ""),
            file=sys.stderr,
        )
    return 0


def cmd_key_add(args: argparse.Namespace) -> int:
    store = open_store(args)
    try:
        public = base64.b64decode(args.public_key, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(
            f"{args.public_key!r} is not base64: copy what 'key create' printed"
        ) from None
    _register(store, args.user, public, args.server)
    return 0


def cmd_key_list(args: argparse.Namespace) -> int:
    registry = read_registry(open_store(args).tree)
    if registry is None:
        print("no keys registered: audit entries are not signed")
        return 0
    print(f"signed from entry {registry.since} on")
    for key in sorted(registry.keys.values(), key=lambda k: (k.user, k.id)):
        print(f"{key.id}  {key.user:<16} {'server' if key.server else ''}")
    return 0
