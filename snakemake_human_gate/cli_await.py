"""``snakemake-gate await``: what ``gate.AWAIT`` runs under executors other than hybrid.

It asks the gate as the hybrid executor does, then runs the same waiting loop
(:mod:`.waiting`) for this one gate, and writes the decision to the job's own output (or
exits 1 on a ``fail_on`` choice, marking the output so that a run under the hybrid
executor asks again rather than keep what downstream jobs made of an earlier decision).
"""

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from .announce import Announcer
from .cli_common import open_store
from .errors import InvalidInput
from .news import News
from .outcome import settle
from .record import GateRecord
from .rerun import clear, mark
from .spec import GateSpec
from .store import current_user
from .waiting import Waiter


def add_await_command(sub: Any) -> None:
    p = sub.add_parser("await", help="wait for a gate's decision (what gate.AWAIT runs)")
    p.add_argument("output", help="where the decision JSON goes")
    p.add_argument("--rule", required=True)
    p.add_argument("--wildcards", default="", help="as Snakemake prints them: a=1,b=x")
    p.add_argument("--spec", required=True, help="the gate's spec as JSON")
    p.add_argument("--inputs", nargs="*", default=[])
    p.add_argument("--poll", type=float, default=0.5, help="seconds between checks")
    p.set_defaults(func=cmd_await)


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
    store = open_store(args, create=True)
    try:
        spec = GateSpec.from_json(json.loads(args.spec))
    except (ValueError, KeyError, TypeError) as e:
        raise InvalidInput(f"--spec is not a gate spec: {e}") from None
    output = str(Path(args.output).absolute())
    asked_now: list[bool] = []

    def ask() -> GateRecord:
        record, new = store.ask(
            rule=args.rule,
            wildcards=parse_wildcards(args.wildcards),
            inputs=args.inputs,
            output=output,
            spec=spec,
            requested_by=current_user(),
            via="gate.AWAIT",
        )
        if new:
            announcer.announce(record)
        asked_now.append(new)
        return record

    announcer = Announcer(store)  # $SNAKEMAKE_GATE_NOTIFY, $SNAKEMAKE_GATE_URL
    announcer.targets(spec)  # refuse unusable targets before asking
    announcer.escalation_targets(spec)
    record = ask()
    print(
        f"gate {record.id} {'asks' if asked_now[0] else 'still asks'}: "
        f"{spec.question}\n  decide with: snakemake-gate approve {record.id}   "
        "(or: show, decide, reject)",
        file=sys.stderr,
    )
    outcome: list[str | None] = []

    def decided(final: GateRecord) -> None:
        failure = settle(final, output)
        if failure:
            decision = final.decision
            by = ", ".join(decision.by) if decision else "?"
            mark(store, output, final.id, f"{decision and decision.choice} by {by}", time.time())
        else:
            clear(store, output, final.created)
        outcome.append(failure)

    def log(text: str) -> None:
        print(f"snakemake-gate: {text}", file=sys.stderr)

    waiter = Waiter(store, News(store, announcer), args.poll, log)
    waiter.watch(record, ask, decided)
    try:
        waiter.until_decided()
    finally:
        announcer.close(timeout=5)
    if outcome and outcome[0]:
        print(outcome[0], file=sys.stderr)
        return 1
    return 0
