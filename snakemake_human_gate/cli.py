"""``snakemake-gate``: list, inspect and decide human gates; audit the store; manage
the gate server's tokens and webhook senders, and run it (``serve``).

Exit codes: 0 done, 2 usage or invalid value, 3 already decided, 4 not permitted,
5 unknown gate.
"""

import argparse
import io
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from .announce import Announcer
from .cli_common import open_store
from .cli_keys import add_key_commands
from .cli_server import add_server_commands
from .errors import GateError, InvalidInput, UnknownGate
from .messages import duration
from .outcome import settle
from .record import iso
from .spec import GateSpec
from .store import GateStore, current_user
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
        return int(args.func(args) or 0)
    except GateError as e:
        print(f"snakemake-gate: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    finally:
        for store in args.stores:
            for warning in [*store.discarded, *store.audit.warnings]:
                print(f"snakemake-gate: warning: {warning}", file=sys.stderr)


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

    p = sub.add_parser("reset", help="forget a gate's record so that its job asks again")
    p.add_argument("id", help=ID_HELP)
    p.set_defaults(func=cmd_reset)

    p = sub.add_parser("await", help="wait for a gate's decision (what gate.AWAIT runs)")
    p.add_argument("output", help="where the decision JSON goes")
    p.add_argument("--rule", required=True)
    p.add_argument("--wildcards", default="", help="as Snakemake prints them: a=1,b=x")
    p.add_argument("--spec", required=True, help="the gate's spec as JSON")
    p.add_argument("--inputs", nargs="*", default=[])
    p.add_argument("--poll", type=float, default=0.5, help="seconds between checks")
    p.set_defaults(func=cmd_await)

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


def cmd_list(args: argparse.Namespace) -> int:
    store = open_store(args)
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
    print(f"{'ID':<32} {'STATUS':<8} {'WAITING':>9}  QUESTION")
    for row in rows:
        print(
            f"{row['id']:<32} {row['status']:<8} {duration(row['waiting_seconds']):>9}  "
            f"{row['question']}"
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


def cmd_reset(args: argparse.Namespace) -> int:
    store = open_store(args)
    gid = resolve_id(store, args.id)
    store.reset(gid)
    print(f"{gid}: reset; its job will ask again")
    return 0


def parse_wildcards(text: str) -> dict[str, str]:
    """Snakemake prints wildcards as 'a=1,b=x' (values must not contain ',' or '=')."""
    wildcards = {}
    for part in filter(None, text.split(",")):
        name, sep, value = part.partition("=")
        if not sep or "=" in value:
            raise InvalidInput(
                f"cannot read wildcards {text!r}: values with ',' or '=' are "
                "not supported by gate.AWAIT; use --executor hybrid"
            )
        wildcards[name] = value
    return wildcards


def cmd_await(args: argparse.Namespace) -> int:
    store = open_store(args)
    try:
        spec = GateSpec.from_json(json.loads(args.spec))
    except (ValueError, KeyError, TypeError) as e:
        raise InvalidInput(f"--spec is not a gate spec: {e}") from None
    ask = dict(
        rule=args.rule,
        wildcards=parse_wildcards(args.wildcards),
        inputs=args.inputs,
        output=args.output,
        spec=spec,
        requested_by=current_user(),
        via="gate.AWAIT",
    )
    announcer = Announcer(store)  # $SNAKEMAKE_GATE_NOTIFY, $SNAKEMAKE_GATE_URL
    announcer.targets(spec)  # refuse unusable targets before asking
    record, new = store.ask(**ask)  # type: ignore[arg-type]
    if new:
        announcer.announce(record)
    print(
        f"gate {record.id} {'asks' if new else 'still asks'}: {spec.question}\n"
        f"  decide with: snakemake-gate approve {record.id}   (or: show, decide, reject)",
        file=sys.stderr,
    )
    try:
        while True:
            try:
                record = store.current(record.id)
            except GateError:  # reset meanwhile: ask again
                record, _ = store.ask(**ask)  # type: ignore[arg-type]
            if record.decision is not None:
                announcer.announce(record)
                failure = settle(record)
                if failure:
                    print(failure, file=sys.stderr)
                    return 1
                return 0
            time.sleep(args.poll)
    finally:
        announcer.close(timeout=5)


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
