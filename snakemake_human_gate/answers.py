"""A gate's answers file: its votes and decision, each confirmed by its audit entry.

One JSON line per answer, appended (and flushed) under the gate's lock, then its audit
entry (flushed), then a short confirmation line naming both::

    {"id": "5f0c...", "vote": {...}, "decision": {...}}   an answer
    {"ack": "5f0c...", "seq": 42}                         audit entry 42 records it

An answer counts once it is confirmed: a decision is never visible without its audit
entry. A process killed between the answer and its audit entry (or whose audit entry
could not be written) leaves an answer without one; it was never acknowledged to its
decider. Readers never show such an answer: they take the gate's lock (waiting for a
writer still at work), then confirm it if its audit entry was written after all (the
writer died just before confirming), or else discard it, with an audit entry saying so
(``discarded``) and a line::

    {"void": "5f0c...", "seq": 43}                        discarded: audit entry 43

(see ``GateFiles.confirmed``). Lines without an ``id`` were written before confirmations
existed and count as confirmed. Pure functions, no I/O.
"""

import json
import secrets
from dataclasses import dataclass
from typing import Any

from .record import TIMEOUT_ACTOR, Decision, Vote, answer


@dataclass(frozen=True)
class Lines:
    """The answers of a gate as read: those that stand, in order, and those that still
    wait for their confirmation (from a writer at work, or one that was killed); answers
    discarded are in neither."""

    confirmed: list[dict[str, Any]]
    unconfirmed: list[dict[str, Any]]
    acks: dict[str, int]  # answer id -> the audit entry that records it
    voids: dict[str, int]  # answer id -> the audit entry that discards it
    ids: list[str]  # of every answer line that has one, in order


def new_answer(vote: Vote | None, decision: Decision | None) -> dict[str, Any]:
    """An answer line with a fresh id."""
    return {"id": secrets.token_hex(8), **answer(vote, decision)}


def ack(answer_id: str, seq: int) -> dict[str, Any]:
    """The line confirming an answer: audit entry ``seq`` records it."""
    return {"ack": answer_id, "seq": seq}


def void(answer_id: str, seq: int) -> dict[str, Any]:
    """The line discarding an answer that was never audited (audit entry ``seq`` says so)."""
    return {"void": answer_id, "seq": seq}


def parse(data: bytes) -> Lines:
    """The lines of an answers file. The last line may be incomplete (still being
    written, or torn by a crash before it was acknowledged): it is skipped, as is any
    line that is not JSON."""
    lines: list[dict[str, Any]] = []
    acks: dict[str, int] = {}
    voids: dict[str, int] = {}
    for raw in data.split(b"\n")[:-1]:
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(line, dict):
            continue
        seq = line.get("seq")
        if "ack" in line:
            acks[str(line["ack"])] = seq if isinstance(seq, int) else -1
        elif "void" in line:
            voids[str(line["void"])] = seq if isinstance(seq, int) else -1
        else:
            lines.append(line)
    confirmed = [line for line in lines if "id" not in line or line["id"] in acks]
    unconfirmed = [line for line in lines if "id" in line and line["id"] not in acks | voids]
    ids = [str(line["id"]) for line in lines if "id" in line]
    return Lines(confirmed, unconfirmed, acks, voids, ids)


def describe(line: dict[str, Any]) -> dict[str, Any]:
    """What an answer line says, for the audit entry that discards it."""
    vote, decision = line.get("vote") or {}, line.get("decision") or {}
    kind = "decision" if decision else "vote"
    return {
        "by": vote.get("by", TIMEOUT_ACTOR),
        "kind": kind,
        "choice": vote.get("choice", decision.get("choice")),
    }
