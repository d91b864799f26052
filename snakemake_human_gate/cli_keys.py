"""What the store's owner manages in ``keys/`` (``ownerfiles.py``): ``snakemake-gate
key`` (signing keys of the audit log, ``signing.py``) and ``snakemake-gate group``
(approver groups, ``groups.py``)."""

import argparse
import base64
import binascii
import os
import sys
from typing import Any

from . import groups, ownerfiles
from .cli_common import open_store
from .errors import InvalidInput
from .signing import (
    check_registrar,
    current_user,
    key_id,
    key_path,
    make_signer,
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

    p = sub.add_parser("group", help="approver groups (approvers=['@NAME']): set, list")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = actions.add_parser(
        "set", help="define group NAME as exactly these USERs (none: remove it); the owner only"
    )
    a.add_argument("name", help="without the '@'")
    a.add_argument("users", nargs="*")
    a.set_defaults(func=cmd_group_set)
    a = actions.add_parser("list", help="the store's groups (and the OS groups gates name)")
    a.set_defaults(func=cmd_group_list)


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
    key, done = register(
        store.tree, user, public, server, next_seq=entry["seq"] + 1, share=store.share
    )
    print(f"key {key} of {user} registered{' (server)' if server else ''}")
    if first:
        print(f"audit entries must be signed from entry {entry['seq'] + 1} on")
    for line in done:
        print(line)


def cmd_key_create(args: argparse.Namespace) -> int:
    store = open_store(args, create=True)
    user = current_user()
    existed = key_path().exists()
    signer = make_signer(user)
    public = base64.b64encode(signer.public).decode()
    where = "your key" if existed else "new key"
    print(f"{where} {key_path()} (keep it to yourself); public key of {user}:", file=sys.stderr)
    print(public)
    if os.geteuid() == ownerfiles.owner(store.tree):
        _register(store, user, signer.public, args.server)
    else:
        print(
            f"the store's owner registers it with: snakemake-gate --dir {store.root} "
            f"key add {user} {public}" + (" --server" if args.server else ""),
            file=sys.stderr,
        )
    return 0


def cmd_key_add(args: argparse.Namespace) -> int:
    store = open_store(args, create=True)
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


def cmd_group_set(args: argparse.Namespace) -> int:
    store = open_store(args, create=True)
    name = args.name.removeprefix("@")
    before = groups.read_file(store.tree).get(name)
    done = groups.set_group(store.tree, name, args.users, store.share)
    store.audit.append(
        "group-set", None, current_user(), group=name, members=sorted(set(args.users)), was=before
    )
    if args.users:
        print(f"@{name}: {', '.join(sorted(set(args.users)))}")
    else:
        print(f"@{name} removed from the store's group file")
    for line in done:
        print(line)
    return 0


def cmd_group_list(args: argparse.Namespace) -> int:
    store = open_store(args)
    defined = groups.read_file(store.tree)
    for name, members in sorted(defined.items()):
        print(f"@{name:<20} {', '.join(members)}   (the store's group file)")
    named: set[str] = set()
    for record in store.scan()[0]:
        named.update(a[1:] for a in record.spec.approvers or () if a.startswith("@"))
    for name in sorted(named - set(defined)):
        found = groups.os_group(name)
        shown = ", ".join(sorted(found)) if found is not None else "(defined nowhere)"
        print(f"@{name:<20} {shown}   (OS group)")
    if not defined and not named:
        print("no groups: define one with 'snakemake-gate group set NAME USER...'")
    return 0
