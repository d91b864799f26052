"""What ``snakemake-gate audit --verify`` checks (docs/gates.md says what that proves,
against whom, in each share mode):

1. the audit log's hash chain, from the first entry to the head;
2. signatures, once the store's owner registered keys (``signing.py``): each entry from
   then on is signed by a registered key of its ``signer``, who is its actor — or a
   server key (the gate server writes for the users it authenticated), or the actor
   is a machine (``timeout``, ``notifier``);
3. that the log and the gates agree: every answer in ``gates/`` and ``archive/`` is
   confirmed by the entry that records it (same gate, same person, same choice) or
   discarded by the entry that says so; every entry that records an answer is backed
   by one; each answer's author may decide the gate as it was asked (approvers,
   self-approval); and each gate's record is the one its ``asked`` entry names.

Answers a killed process left unconfirmed are settled first (discarded, and noted) when
the caller may write to the store.
"""

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from . import answers
from .deciders import entries
from .gatefiles import ANSWERS, RECORD_LIMIT
from .record import TIMEOUT_ACTOR, GateRecord
from .signing import Registry, SigningError, read_registry, split, valid
from .store import GateStore
from .storefs import UnsafeFile, read_file

ANSWER_EVENTS = {"decided", "voted", "timeout"}
MACHINE_ACTORS = {TIMEOUT_ACTOR, "notifier"}


@dataclass
class Report:
    entries: int
    problems: list[str] = field(default_factory=list)  # each makes the log unverified
    notes: list[str] = field(default_factory=list)  # worth knowing, not a break
    signed: str = "no"  # what the signatures cover, in words

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_store(store: GateStore) -> Report:
    """Check the store's audit log; settle unconfirmed answers first if allowed to."""
    store.scan()  # reading a gate settles what a killed process left (if this user may)
    verdict = store.audit.verify()
    report = Report(verdict.entries, [] if verdict.ok else [verdict.problem])
    entries = []
    for line in store.audit.lines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # the chain check names it
        if isinstance(entry, dict):
            entries.append((line, entry))
    _check_signatures(store, entries, report)
    recorded = {e["answer"]: e for _, e in entries if isinstance(e.get("answer"), str)}
    asked = {e.get("gate"): e for _, e in entries if e.get("event") == "asked"}  # the last
    for _, entry in entries:
        if entry.get("event") == "discarded":
            report.notes.append(
                f"entry {entry.get('seq')}: gate {entry.get('gate')}: a {entry.get('kind')} "
                f"by {entry.get('by')} was never audited (its writer stopped first): "
                f"discarded by {entry.get('actor')}"
            )
    held: set[str] = set()
    for directory in ("gates", "archive"):
        for name, lines, record, digest in _gate_files(store, directory):
            held.update(lines.ids)
            shown = f"{directory}/{name}"
            report.problems += _disagreements(shown, lines, record, recorded)
            entry = asked.get(record.id if record else None, {})
            if directory == "gates" and "record" in entry and entry["record"] != digest:
                report.problems.append(
                    f"{shown}: the gate's record is not the one its asked entry "
                    f"{entry.get('seq')} names: it was changed after it was asked"
                )
    for answer_id, entry in recorded.items():
        if answer_id not in held:
            report.problems.append(
                f"entry {entry.get('seq')} records an answer to gate {entry.get('gate')} that "
                "no answers file holds: the gate's answers were altered or removed"
            )
    return report


def _check_signatures(
    store: GateStore, entries: list[tuple[bytes, dict[str, Any]]], report: Report
) -> None:
    try:
        registry = read_registry(store.tree)
    except SigningError as e:
        report.problems.append(f"the signatures cannot be checked: {e}")
        return
    if registry is None:
        sealed = next((e.get("seq") for line, e in entries if split(line)), None)
        if sealed is not None:
            report.problems.append(
                f"entries are signed (the first: entry {sealed}) but the store has no "
                "key registry (keys/keys.json): it was removed, or never made"
            )
        report.signed = "no: the store's owner registered no keys"
        return
    report.signed = f"from entry {registry.since} on, by registered keys"
    try:
        for line, entry in entries:
            if isinstance(entry.get("seq"), int) and entry["seq"] >= registry.since:
                problem = _signature_problem(line, entry, registry)
                if problem:
                    report.problems.append(f"entry {entry['seq']}: {problem}")
    except SigningError as e:
        report.problems.append(f"the signatures cannot be checked: {e}")


def _signature_problem(line: bytes, entry: dict[str, Any], registry: Registry) -> str | None:
    sealed = split(line)
    key = registry.keys.get(str(entry.get("key")))
    if sealed is None:
        return f"not signed (it names {entry.get('actor')}): anyone who can write the log could"
    if key is None or key.user != entry.get("signer"):
        return f"signed by a key of {entry.get('signer')} that the store's owner did not register"
    if not valid(key.public, *sealed):
        return f"its signature by {key.user} does not match: the entry was altered"
    actor = entry.get("actor")
    if actor != key.user and not key.server and actor not in MACHINE_ACTORS:
        return (
            f"signed by {key.user} but names {actor}: only a server key may write an entry "
            "in another's name"
        )
    return None


def _gate_files(
    store: GateStore, directory: str
) -> list[tuple[str, answers.Lines, GateRecord | None, str]]:
    """Each answers file: its name, its lines, its gate's record and that record's digest."""
    found = []
    with store.tree.dir(directory) as d:
        for name in sorted(n for n in os.listdir(d) if n.endswith(ANSWERS)):
            shown = store.tree.shown(directory, name)
            lines = answers.parse(read_file(d, name, shown, RECORD_LIMIT))
            asked = name[: -len(ANSWERS)] + ".json"
            try:
                raw = read_file(d, asked, store.tree.shown(directory, asked), RECORD_LIMIT)
                record: GateRecord | None = GateRecord.from_json(json.loads(raw))
                digest = hashlib.sha256(raw).hexdigest()
            except (FileNotFoundError, UnsafeFile, ValueError, KeyError, TypeError):
                record, digest = None, ""
            found.append((name, lines, record, digest))
    return found


def _disagreements(
    shown: str,
    lines: answers.Lines,
    record: GateRecord | None,
    recorded: dict[str, dict[str, Any]],
) -> list[str]:
    problems = []
    by_id = {line["id"]: line for line in lines.confirmed if "id" in line}
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
        elif answer_id in by_id:
            problem = _mismatch(by_id[answer_id], entry, record)
            if problem:
                problems.append(f"{shown}: answer {answer_id} and entry {seq}: {problem}")
    return problems


def _mismatch(line: dict[str, Any], entry: dict[str, Any], record: GateRecord | None) -> str | None:
    """What an answer and the entry that records it disagree on, or why its author may
    not have given it."""
    vote, decision = line.get("vote") or {}, line.get("decision") or {}
    author = vote.get("by", TIMEOUT_ACTOR)
    choice = vote.get("choice", decision.get("choice"))
    if (entry.get("actor"), entry.get("choice")) != (author, choice):
        return f"the answer is {author}'s {choice}, the entry {entry.get('actor')}'s"
    if record is None or author == TIMEOUT_ACTOR:
        return None
    if entry.get("gate") != record.id:
        return f"the entry is about gate {entry.get('gate')}, not {record.id}"
    spec = record.spec
    at = vote.get("at")
    allowed = entries(record, at if isinstance(at, int | float) else record.created)
    group = entry.get("as")  # an @group: who was a member then cannot be checked now
    if not (isinstance(group, str) and group.startswith("@")):
        group = None
    if allowed is not None and author not in allowed and group not in allowed:
        return f"{author} is not one of the gate's approvers ({', '.join(allowed)})"
    if not spec.allow_self_approval and author == record.requested_by:
        return f"{author} asked the gate, which does not allow self-approval"
    return None
