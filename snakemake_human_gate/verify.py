"""What ``snakemake-gate audit --verify`` checks: the audit log's hash chain, and that
the log and the gates' answers agree — every answer confirmed by the entry that records
it, every answer discarded by the entry that says so, every entry that records an answer
backed by one. Answers a killed process left unconfirmed are settled first (discarded,
and reported) when the caller may write to the store."""

import os
from dataclasses import dataclass, field
from typing import Any

from . import answers
from .gatefiles import ANSWERS, RECORD_LIMIT
from .store import GateStore
from .storefs import read_file

ANSWER_EVENTS = {"decided", "voted", "timeout"}


@dataclass
class Report:
    entries: int
    problems: list[str] = field(default_factory=list)  # each makes the log unverified
    notes: list[str] = field(default_factory=list)  # worth knowing, not a break

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_store(store: GateStore) -> Report:
    """Check the store's audit log; settle unconfirmed answers first if allowed to."""
    store.scan()  # reading a gate settles what a killed process left (if this user may)
    verdict = store.audit.verify()
    report = Report(verdict.entries, [] if verdict.ok else [verdict.problem])
    recorded: dict[str, dict[str, Any]] = {}
    for entry in store.audit.entries():
        if isinstance(entry.get("answer"), str):
            recorded[entry["answer"]] = entry
        if entry.get("event") == "discarded":
            report.notes.append(
                f"entry {entry.get('seq')}: gate {entry.get('gate')}: a {entry.get('kind')} "
                f"by {entry.get('by')} was never audited (its writer stopped first): "
                f"discarded by {entry.get('actor')}"
            )
    held: set[str] = set()
    for directory in ("gates", "archive"):
        for name, lines in _answer_files(store, directory):
            held.update(lines.ids)
            shown = f"{directory}/{name}"
            report.problems += _disagreements(shown, lines, recorded)
    for answer_id, entry in recorded.items():
        if answer_id not in held:
            report.problems.append(
                f"entry {entry.get('seq')} records an answer to gate {entry.get('gate')} that "
                "no answers file holds: the gate's answers were altered or removed"
            )
    return report


def _answer_files(store: GateStore, directory: str) -> list[tuple[str, answers.Lines]]:
    with store.tree.dir(directory) as d:
        names = sorted(n for n in os.listdir(d) if n.endswith(ANSWERS))
        return [
            (
                name,
                answers.parse(read_file(d, name, store.tree.shown(directory, name), RECORD_LIMIT)),
            )
            for name in names
        ]


def _disagreements(
    shown: str, lines: answers.Lines, recorded: dict[str, dict[str, Any]]
) -> list[str]:
    problems = []
    for answer_id in lines.ids:
        entry = recorded.get(answer_id, {})
        if answer_id in lines.acks:
            seq, expected = lines.acks[answer_id], ANSWER_EVENTS
        elif answer_id in lines.voids:
            seq, expected = lines.voids[answer_id], {"discarded"}
        else:
            problems.append(
                f"{shown}: answer {answer_id} is not audited yet; a member who may write "
                "to the store settles it ('snakemake-gate audit --verify' as them)"
            )
            continue
        if entry.get("seq") != seq or entry.get("event") not in expected:
            problems.append(
                f"{shown}: answer {answer_id} names audit entry {seq}, which does not "
                "record it: the log was altered, or cut short and written anew"
            )
    return problems
