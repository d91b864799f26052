"""A gate as stored: who asked what, the votes so far, and the decision.

Pure data; the store reads and writes it. Status is derived, never stored twice.
What was asked never changes once written; each answer after it (a vote, the decision
it completes, a timeout's decision) is one :func:`answer` line, and the record as it
stands is what was asked with every answer applied in order (:meth:`GateRecord.apply`).
"""

import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .errors import InvalidInput
from .spec import GateSpec

SCHEMA = 1
TIMEOUT_ACTOR = "timeout"  # who the audit log and a decision name for a timeout
GATE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")


def check_gate_id(gate_id: str) -> str:
    """Ids name files: letters, digits, '_', '.', '-' only (no paths)."""
    if not isinstance(gate_id, str) or not GATE_ID.fullmatch(gate_id) or ".." in gate_id:
        raise InvalidInput(
            f"invalid gate id {gate_id!r}: use the id shown by 'snakemake-gate list'"
        )
    return gate_id


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Vote:
    by: str
    choice: str
    fields: dict[str, Any]
    comment: str
    at: float
    via: str


@dataclass
class Decision:
    """What downstream rules read (``decision(path)``)."""

    choice: str
    fields: dict[str, Any]
    by: list[str]
    at: str  # ISO 8601, UTC
    comment: str = ""
    timeout: bool = False
    gate: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "choice": self.choice,
            "fields": self.fields,
            "by": self.by,
            "at": self.at,
            "comment": self.comment,
            "timeout": self.timeout,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Decision":
        return cls(
            choice=data["choice"],
            fields=dict(data.get("fields", {})),
            by=list(data["by"]),
            at=data["at"],
            comment=data.get("comment", ""),
            timeout=bool(data.get("timeout", False)),
            gate=data.get("gate", ""),
        )


@dataclass
class GateRecord:
    id: str
    rule: str
    wildcards: dict[str, str]
    inputs: list[dict[str, str]]  # [{"path", "sha256"}]: the artifacts shown
    output: str  # where the decision JSON goes (absolute path)
    spec: GateSpec
    requested_by: str
    created: float
    votes: list[Vote] = field(default_factory=list)
    decision: Decision | None = None

    def vote(self, vote: Vote) -> None:
        """Count ``vote``: it replaces the voter's earlier one."""
        self.votes = [v for v in self.votes if v.by != vote.by]
        self.votes.append(vote)

    def apply(self, line: dict[str, Any]) -> None:
        """Apply one :func:`answer` line; a decision once made stands."""
        if line.get("vote") is not None:
            self.vote(Vote(**line["vote"]))
        if line.get("decision") is not None and self.decision is None:
            self.decision = Decision.from_json(line["decision"])

    @property
    def status(self) -> str:
        if self.decision is None:
            return "pending"
        return "expired" if self.decision.timeout else "decided"

    def due(self, now: float | None = None) -> bool:
        """True when the timeout has passed and no decision stands yet."""
        if self.decision is not None or self.spec.timeout is None:
            return False
        return (now if now is not None else time.time()) >= self.created + self.spec.timeout

    def summary(self, now: float | None = None) -> dict[str, Any]:
        """The fields of ``snakemake-gate list --json``."""
        now = now if now is not None else time.time()
        end = now if self.decision is None else timestamp(self.decision.at, now)
        return {
            "id": self.id,
            "rule": self.rule,
            "wildcards": self.wildcards,
            "status": self.status,
            "question": self.spec.question,
            "choices": list(self.spec.choices),
            "fields": {name: f.type for name, f in self.spec.fields.items()},
            "approvers": list(self.spec.approvers) if self.spec.approvers is not None else None,
            "quorum": self.spec.quorum,
            "votes": len(self.votes),
            "created": iso(self.created),
            "waiting_seconds": round(max(0.0, end - self.created), 1),
            "deadline": iso(self.created + self.spec.timeout) if self.spec.timeout else None,
            "decision": self.decision.to_json() if self.decision else None,
            "inputs": [i["path"] for i in self.inputs],
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "id": self.id,
            "rule": self.rule,
            "wildcards": self.wildcards,
            "inputs": self.inputs,
            "output": self.output,
            "spec": self.spec.to_json(),
            "requested_by": self.requested_by,
            "created": self.created,
            "votes": [vars(v) for v in self.votes],
            "decision": self.decision.to_json() if self.decision else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "GateRecord":
        if data.get("schema") != SCHEMA:
            raise ValueError(f"unsupported schema {data.get('schema')!r} (expected {SCHEMA})")
        return cls(
            id=check_gate_id(data["id"]),
            rule=data["rule"],
            wildcards=dict(data.get("wildcards", {})),
            inputs=list(data.get("inputs", [])),
            output=data["output"],
            spec=GateSpec.from_json(data["spec"]),
            requested_by=data["requested_by"],
            created=float(data["created"]),
            votes=[Vote(**v) for v in data.get("votes", [])],
            decision=Decision.from_json(data["decision"]) if data.get("decision") else None,
        )


def answer(vote: Vote | None, decision: Decision | None) -> dict[str, Any]:
    """One line of a gate's answers: a vote, the decision, or both."""
    return {
        "vote": vars(vote) if vote else None,
        "decision": decision.to_json() if decision else None,
    }


def timestamp(text: str, default: float) -> float:
    """Unix seconds of an ISO 8601 time as :func:`iso` writes it (``default`` if not one)."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return default
