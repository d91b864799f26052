"""``snakemake-gate``: list, inspect and decide human gates; audit the store; manage
the gate server's tokens and webhook senders, and run it (``serve``).

Exit codes: 0 done, 2 usage or invalid value, 3 already decided, 4 not permitted,
5 unknown gate.
"""

import argparse
import contextlib
import gc
import io
import json
import os
import shlex
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

from .cli_await import add_await_command
from .cli_common import open_store
from .cli_keys import add_key_commands
from .cli_server import add_server_commands
from .errors import GateError, InvalidInput, UnknownGate
from .messages import duration
from .record import iso
from .reopen import reopen
from .store import GateStore
from .text import check_text
from .verify import verify_store

ID_HELP = "gate id, or the rule name when that rule has one pending gate"


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # text stored by earlier versions: shown, not fatal
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    args.stores = []  # opened by the command: what they found is reported at the end
    try:
        try:
            code = int(args.func(args) or 0)
            sys.stdout.flush()  # here, so that a reader gone (| head) is seen here
            return code
        except GateError as e:
            print(f"snakemake-gate: {e}", file=sys.stderr)
            return e.exit_code
        except KeyboardInterrupt:
            return 130
        finally:
            for store in args.stores:
                for warning in [*store.discarded, *store.audit.warnings]:
                    print(f"snakemake-gate: warning: {warning}", file=sys.stderr)
    except BrokenPipeError:  # the reader stopped reading (| head): as other tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing more to flush at exit
        return 128 + signal.SIGPIPE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snakemake-gate", description="Decide the human gates of Snakemake workflows."
    )
    parser.add_argument(
        "--dir",
        help="gate store (default: $SNAKEMAKE_GATE_DIR, else .snakemake/gates here)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="gates waiting for a decision (--all: every gate)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--all", action="store_true")
    p.add_argument("--rule", help="only the gates of this rule")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", help="one gate: question, choices, fields, artifacts, history")
    p.add_argument("id", help=ID_HELP)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    for name, helptext in (("approve", "choose 'approve'"), ("reject", "choose 'reject'")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("id", help=ID_HELP)
        p.add_argument("--comment", default="")
        if name == "approve":
            _add_set(p)
        p.set_defaults(func=cmd_decide, choice=name)

    p = sub.add_parser("decide", help="choose any of the gate's choices")
    p.add_argument("id", help=ID_HELP)
    p.add_argument("--choice", required=True)
    p.add_argument("--comment", default="")
    _add_set(p)
    p.set_defaults(func=cmd_decide)

    for name in ("reopen", "reset"):
        p = sub.add_parser(
            name,
            help="re-review: withdraw the gate's decision; the next run asks again and reruns "
            "every job downstream" + (" (the same as reopen)" if name == "reset" else ""),
        )
        p.add_argument("id", help=ID_HELP)
        p.set_defaults(func=cmd_reopen)

    add_await_command(sub)

    p = sub.add_parser("audit", help="the audit log (--verify: check its hash chain)")
    p.add_argument("id", nargs="?", help="only this gate's entries")
    p.add_argument("--verify", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_audit)

    add_server_commands(sub)
    add_key_commands(sub)
    return parser


def _add_set(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="a typed field value"
    )


def _values(items: list[str]) -> dict[str, str]:
    values = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidInput(f"--set {ascii(item)}: expected FIELD=VALUE")
        name = check_text(name.strip(), "--set: the field name")
        values[name] = check_text(value, f"--set {name}")
    return values


def _warn_problems(problems: list[Any]) -> None:
    for problem in problems:
        print(f"snakemake-gate: warning: {problem.path}: {problem.reason}", file=sys.stderr)


@contextlib.contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """Reading a whole store makes many objects and no reference cycles: the cycle
    collector's full passes over them find nothing (with 10,000 gates they took about a
    tenth of ``list``)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def cmd_list(args: argparse.Namespace) -> int:
    store = open_store(args)
    with _without_cycle_collection():
        records, problems = store.scan_current()
        now = time.time()
        rows = [
            r.summary(now)
            for r in records
            if (args.all or r.status == "pending") and args.rule in (None, r.rule)
        ]
    rows.sort(key=lambda row: row["created"])
    _warn_problems(problems)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print("no gates waiting" if not args.all else "no gates")
        return 0
    shown = [_wildcards(row["wildcards"]) or "-" for row in rows]
    width = min(max(len("WILDCARDS"), *map(len, shown)), 40)
    print(f"{'ID':<32} {'STATUS':<8} {'WAITING':>9}  {'WILDCARDS':<{width}}  QUESTION")
    for row, wildcards in zip(rows, shown, strict=True):
        print(
            f"{row['id']:<32} {row['status']:<8} {duration(row['waiting_seconds']):>9}  "
            f"{wildcards:<{width}}  {row['question']}"
        )
    return 0


def resolve_id(store: GateStore, given: str) -> str:
    """A gate id, the name of a rule with one pending gate, or a unique id prefix."""
    if store.has(given):
        return given
    records, _ = store.scan()
    for candidates in (
        [r for r in records if r.rule == given and r.status == "pending"],
        [r for r in records if r.rule == given],
        [r for r in records if r.id.startswith(given)],
    ):
        if len(candidates) == 1:
            return candidates[0].id
        if len(candidates) > 1:
            ids = ", ".join(sorted(r.id for r in candidates))
            raise InvalidInput(f"{given!r} matches several gates: {ids}; give the full id")
    raise UnknownGate(f"no gate {given!r} in {store.root} (see 'snakemake-gate list --all')")


def cmd_show(args: argparse.Namespace) -> int:
    store = open_store(args)
    record = store.get(resolve_id(store, args.id))
    history = list(store.audit.entries(record.id))
    if args.json:
        print(json.dumps({**record.summary(), "history": history}, indent=1))
        return 0
    spec = record.spec
    lines = [
        f"gate      {record.id}   ({record.status})",
        f"rule      {record.rule}  {_wildcards(record.wildcards)}".rstrip(),
        f"question  {spec.question}",
        f"choices   {', '.join(spec.choices)}" + (f"   (fail: {', '.join(spec.fail_on)})"),
    ]
    for name, f in spec.fields.items():
        bounds = "".join(
            part
            for part in (
                f" >= {f.min}" if f.min is not None else "",
                f" <= {f.max}" if f.max is not None else "",
                f" one of {list(f.choices)}" if f.choices else "",
                f" (default {f.default!r})" if f.default is not None else "",
            )
        )
        lines.append(f"field     {name}: {f.type}{bounds}")
    approvers = ", ".join(spec.approvers) if spec.approvers is not None else "anyone"
    lines.append(
        f"deciders  {approvers}; quorum {spec.quorum}"
        + ("" if spec.allow_self_approval else f"; not {record.requested_by} (asked)")
    )
    lines.append(f"asked     {iso(record.created)} by {record.requested_by}")
    if spec.timeout:
        lines.append(f"deadline  {iso(record.created + spec.timeout)} -> {spec.on_timeout}")
    for item in record.inputs:
        lines.append(f"artifact  {item['path']}")
    for output in record.outputs:
        lines.append(f"output    {output}")
    for vote in record.votes:
        lines.append(f"vote      {vote.by}: {vote.choice} {vote.fields or ''} {vote.comment}")
    if record.decision:
        d = record.decision
        lines.append(f"decision  {d.choice} {d.fields or ''} by {', '.join(d.by)} at {d.at}")
    lines.append("history")
    for entry in history:
        lines.append(f"  {iso(entry['ts'])}  {entry['event']:<8} {entry['actor']}")
    print("\n".join(lines))
    return 0


def _wildcards(wildcards: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in wildcards.items())


def cmd_decide(args: argparse.Namespace) -> int:
    store = open_store(args)
    values = _values(getattr(args, "set", []))
    check_text(args.comment, "--comment")
    record = store.decide(resolve_id(store, args.id), args.choice, values, comment=args.comment)
    if record.decision:
        print(f"{record.id}: {record.decision.choice} (decided by {', '.join(record.decision.by)})")
    else:
        agreeing = sum(1 for v in record.votes if v.choice == args.choice)
        print(f"{record.id}: vote recorded ({agreeing} of {record.spec.quorum} needed)")
    return 0


def cmd_reopen(args: argparse.Namespace) -> int:
    store = open_store(args)
    done = reopen(store, resolve_id(store, args.id))
    record = done.record
    was = record.status
    if record.decision:
        was += f": {record.decision.choice} by {', '.join(record.decision.by)}"
    print(f"{record.id}: reopened (it was {was})")
    for output in done.removed:
        print(f"  its decision was removed from {output}")
    for problem in done.kept:
        print(f"  warning: {problem}", file=sys.stderr)
    print(
        "  the next run under --executor hybrid asks again and reruns every job downstream;\n"
        "  under other executors add: --forcerun "
        + " ".join(shlex.quote(os.path.relpath(o)) for o in record.outputs)
    )
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    store = open_store(args)
    if args.verify:
        report = verify_store(store)
        for note in report.notes:
            print(f"note: {note}")
        print(f"signatures: {report.signed}")
        if report.ok:
            print(
                f"audit log intact: {report.entries} entries; every answer of every gate is "
                "recorded in it"
            )
            return 0
        print(f"audit log BROKEN after {report.entries} good entries: {report.problems[0]}")
        for problem in report.problems[1:]:
            print(f"also: {problem}")
        return 1
    entries = list(store.audit.entries(args.id))
    if args.json:
        print(json.dumps(entries, indent=1))
        return 0
    for e in entries:
        detail = " ".join(
            f"{k}={v}"
            for k, v in e.items()
            if k not in ("seq", "ts", "event", "gate", "actor", "prev")
        )
        gate = e.get("gate") or "-"
        print(f"{e['seq']:>6} {iso(e['ts'])} {e['event']:<8} {gate:<28} {e['actor']:<10} {detail}")
    return 0
