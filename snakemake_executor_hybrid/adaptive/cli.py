"""``snakemake-hybrid``: what the run journal knows.

    snakemake-hybrid history                      per rule: runs, runtime, memory, waste
    snakemake-hybrid show RULE                    the rule's recent job attempts
    snakemake-hybrid predict RULE --input-size N  what learned() would request now

Plain text by default, ``--json`` for scripts. ``--history PATH`` reads another
journal than ``.snakemake/hybrid/history.sqlite`` (as ``--hybrid-history`` writes it).
"""

import argparse
import json
import sqlite3
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import journal, model
from .advisor import LEARNABLE, predict, runs_of
from .learned import DEFAULT_MIN_RUNS

FAILURES = ("failed", "out_of_memory", "timed_out", "node_failed", "cancelled")


def _quantile(values: list[float], q: float) -> float | None:
    return round(model.quantile(values, q), 1) if values else None


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def waste_mb_s(record: journal.Record) -> float | None:
    """Requested minus used memory, times the time it was held (MB*s)."""
    if None in (record.req_mem_mb, record.used_mem_mb, record.used_wall_s):
        return None
    return max(0.0, record.req_mem_mb - record.used_mem_mb) * record.used_wall_s  # type: ignore[operator]


def summarize(records: Sequence[journal.Record]) -> list[dict[str, Any]]:
    """One summary per rule (sorted by name)."""
    by_rule: dict[str, list[journal.Record]] = defaultdict(list)
    for record in records:
        by_rule[record.rule].append(record)
    rows = []
    for rule, rs in sorted(by_rule.items()):
        ok = [r for r in rs if r.state == "succeeded"]
        wall = [r.used_wall_s for r in ok if r.used_wall_s is not None]
        mem = [r.used_mem_mb for r in ok if r.used_mem_mb is not None]
        asked = [float(r.req_mem_mb) for r in ok if r.req_mem_mb is not None]
        waste = [w for w in (waste_mb_s(r) for r in rs) if w is not None]
        rows.append(
            {
                "rule": rule,
                "runs": len(rs),
                "succeeded": len(ok),
                "failures": sum(r.state in FAILURES for r in rs),
                "out_of_memory": sum(r.state == "out_of_memory" for r in rs),
                "timed_out": sum(r.state == "timed_out" for r in rs),
                "failed_over": sum(r.state == "failed_over" for r in rs),
                "runtime_s": {"median": _median(wall), "p95": _quantile(wall, 0.95)},
                "mem_mb": {"median": _median(mem), "p95": _quantile(mem, 0.95)},
                "requested_mem_mb": {"median": _median(asked)},
                "waste_mb_s": round(sum(waste), 1),
                "last": max((r.ended or 0.0) for r in rs),
            }
        )
    return rows


def _text_history(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "The journal has no jobs yet."
    head = (
        f"{'rule':<24}{'runs':>6}{'fail':>6}{'oom':>5}{'time':>5}{'over':>6}"
        f"{'runtime s med/p95':>20}{'mem MB med/p95':>18}{'asked MB med':>14}{'waste MB*s':>13}"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['rule']:<24}{r['runs']:>6}{r['failures']:>6}{r['out_of_memory']:>5}"
            f"{r['timed_out']:>5}{r['failed_over']:>6}"
            f"{_pair(r['runtime_s']):>20}{_pair(r['mem_mb']):>18}"
            f"{_num(r['requested_mem_mb']['median']):>14}{r['waste_mb_s']:>13.0f}"
        )
    lines.append(
        "fail: failed attempts (oom: killed for memory, time: for time); over: moved on to "
        "the next backend of a failover chain; waste: requested minus used memory, times "
        "its runtime."
    )
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _pair(d: dict[str, float | None]) -> str:
    return f"{_num(d['median'])}/{_num(d['p95'])}"


def _row(record: journal.Record) -> dict[str, Any]:
    row = record.row()
    row["wildcards"], row["learned"] = record.wildcards, record.learned
    return row


def _text_show(rule: str, records: list[journal.Record]) -> str:
    if not records:
        return f"The journal has no jobs of rule '{rule}'."
    lines = [f"{'ended':<20}{'wildcards':<22}{'backend':<9}{'try':>4} {'state':<14}"
             f"{'asked MB':>9}{'used MB':>9}{'asked min':>10}{'wall s':>8}  reason"]  # fmt: skip
    for r in records:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.ended or 0))
        wildcards = ",".join(f"{k}={v}" for k, v in r.wildcards.items()) or "-"
        lines.append(
            f"{when:<20}{wildcards[:21]:<22}{r.backend:<9}{r.attempt:>4} {r.state:<14}"
            f"{_num(r.req_mem_mb):>9}{_num(r.used_mem_mb):>9}{_num(r.req_runtime_min):>10}"
            f"{_num(r.used_wall_s):>8}  {r.reason or ''}"
        )
    return "\n".join(lines)


def prediction(
    records: list[journal.Record], size: int, backend: str | None, min_runs: int, q: float
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in LEARNABLE:
        runs = runs_of(records, name, backend, min_runs)
        decision = predict(runs, name, size, min_runs, q)
        ok = sum(not r.killed for r in runs)
        found[name] = (
            {"value": None, "why": f"not enough runs to learn ({ok} of {min_runs} needed)"}
            if decision is None
            else {**decision.as_json(), "why": decision.why}
        )
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="snakemake-hybrid", description="What the hybrid executor's run journal knows."
    )
    parser.add_argument("--history", type=Path, default=journal.DEFAULT_PATH,
                        help="the journal (default: %(default)s, as --hybrid-history)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print JSON")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("history", help="per rule: runs, runtime, memory, waste, failures")
    show = sub.add_parser("show", help="the recent job attempts of a rule")
    show.add_argument("rule")
    show.add_argument("--last", type=int, default=20, help="how many (default: %(default)s)")
    guess = sub.add_parser("predict", help="what learned() would request now")
    guess.add_argument("rule")
    guess.add_argument("--input-size", type=int, required=True, metavar="BYTES")
    guess.add_argument("--backend", help="count only the runs on this backend (if enough)")
    guess.add_argument("--min-runs", type=int, default=DEFAULT_MIN_RUNS)
    guess.add_argument("--quantile", type=float, default=model.QUANTILE)
    args = parser.parse_args(argv)

    try:
        if args.command == "history":
            data: Any = summarize(journal.read(args.history))
            text = _text_history(data)
        elif args.command == "show":
            records = journal.read(args.history, "rule = ?", (args.rule,))[-args.last :]
            data, text = [_row(r) for r in records], _text_show(args.rule, records)
        else:
            records = journal.read(args.history, "rule = ?", (args.rule,))
            data = prediction(records, args.input_size, args.backend, args.min_runs, args.quantile)
            text = "\n".join(f"{name}: {d['why']}" for name, d in data.items())
    except sqlite3.Error as e:
        print(f"snakemake-hybrid: cannot read the journal {args.history}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(data, indent=1, sort_keys=True) if args.json else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
