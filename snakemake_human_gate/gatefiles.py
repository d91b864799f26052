"""A gate's two files in ``gates/``: what it asks (``ID.json``, written once) and its
answers (``ID.answers``), each answer confirmed by its audit entry (:mod:`.answers`).

Every function takes the descriptor of the store's ``gates/`` directory (``g``), so that
nothing is reached through a link (:mod:`.storefs`); writers hold the gate's lock.
"""

import contextlib
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from . import answers
from .audit import AuditLog
from .errors import InvalidInput, UnknownGate
from .record import Decision, GateRecord, Vote, check_gate_id
from .storefs import StoreTree, append_line, appending, open_file, read_file, write_atomic
from .text import json_line, json_text

logger = logging.getLogger(__name__)

ANSWERS = ".answers"
RECORD_LIMIT = 16 << 20  # bytes of a gate's .json or .answers file


@dataclass(frozen=True)
class Discarded:
    """An answer found without its audit entry (its writer was killed in between, or
    could not write the entry), discarded by the reader that found it."""

    gate: str
    answer: str
    seq: int  # the audit entry that says so
    by: str
    kind: str  # vote or decision
    choice: str

    def __str__(self) -> str:
        return (
            f"gate {self.gate}: a {self.kind} ({self.choice}) by {self.by} was never audited "
            "(the process writing it stopped first, and never reported it done): discarded, "
            f"audit entry {self.seq}"
        )


@dataclass
class GateFiles:
    tree: StoreTree
    audit: AuditLog
    file_mode: int
    discarded: list[Discarded] = field(default_factory=list)  # for the caller to report

    def _shown(self, name: str) -> str:
        return self.tree.shown("gates", name)

    def read(self, g: int, gid: str) -> tuple[GateRecord, list[dict[str, Any]]]:
        """The record with its confirmed answers applied, and the answers that wait for a
        confirmation."""
        name = f"{check_gate_id(gid)}.json"
        try:
            raw = read_file(g, name, self._shown(name), RECORD_LIMIT)
        except FileNotFoundError:
            raise UnknownGate(f"no gate {gid!r} (see 'snakemake-gate list --all')") from None
        try:
            record = GateRecord.from_json(json.loads(raw))
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise InvalidInput(
                f"gate file {self._shown(name)} is not a valid gate record: {e}"
            ) from None
        if record.id != gid:
            raise InvalidInput(f"gate file {self._shown(name)} holds gate {record.id!r}")
        try:  # none yet, in a store made before answers files
            data = read_file(g, f"{gid}{ANSWERS}", self._shown(f"{gid}{ANSWERS}"), RECORD_LIMIT)
        except FileNotFoundError:
            return record, []
        lines = answers.parse(data)
        for line in lines.confirmed:
            record.apply(line)
        return record, lines.unconfirmed

    def confirmed(self, g: int, gid: str, actor: str) -> GateRecord:
        """The record once no answer waits for a confirmation (under the gate's lock): one
        whose audit entry was written is confirmed; one without is discarded, audited as
        such by ``actor`` (the caller)."""
        record, unconfirmed = self.read(g, gid)
        for line in unconfirmed:
            seq = self.audit.find_answer(line["id"])
            if seq is not None:  # its writer died between the entry and the confirmation
                self._append(g, gid, answers.ack(line["id"], seq))
                record.apply(line)
                continue
            what = answers.describe(line)
            entry = self.audit.append(
                "discarded",
                gid,
                actor,
                answer=line["id"],
                **what,
                reason="never audited: its writer stopped before it was done",
            )
            self._append(g, gid, answers.void(line["id"], entry["seq"]))
            discarded = Discarded(gid, line["id"], entry["seq"], **what)
            logger.warning("%s", discarded)
            self.discarded.append(discarded)
        return record

    def answer(
        self,
        g: int,
        gid: str,
        vote: Vote | None,
        decision: Decision | None,
        event: str,
        actor: str,
        **details: Any,
    ) -> None:
        """Append an answer, then its audit entry, then the confirmation of both."""
        line = answers.new_answer(vote, decision)
        with self._appending(g, gid) as fd:
            append_line(fd, json_line(line))
            entry = self.audit.append(event, gid, actor, **details, answer=line["id"])
            # not flushed: lost, its audit entry (on disk) confirms the answer again
            append_line(fd, json_line(answers.ack(line["id"], entry["seq"])), durable=False)

    def _appending(self, g: int, gid: str) -> contextlib.AbstractContextManager[int]:
        name = f"{gid}{ANSWERS}"
        return appending(g, name, self.file_mode, self._shown(name))

    def _append(self, g: int, gid: str, line: dict[str, Any]) -> None:
        with self._appending(g, gid) as fd:
            append_line(fd, json_line(line))

    def create(self, g: int, record: GateRecord) -> str:
        """Write a new gate: an empty answers file first (made now so that answering need
        not create one and flush the directory; answers left by an interrupted reset are
        dropped), then what it asks; the SHA-256 of that (for its ``asked`` entry)."""
        name = f"{record.id}{ANSWERS}"
        fd = open_file(g, name, os.O_WRONLY, self._shown(name), create=self.file_mode)
        try:
            if os.fstat(fd).st_size:  # (a new file needs no flush: lost, it reads as empty)
                os.ftruncate(fd, 0)
                os.fsync(fd)
        finally:
            os.close(fd)
        asked = f"{record.id}.json"
        data = json_text(record.to_json()).encode()
        write_atomic(g, asked, data, self.file_mode, self._shown(asked))
        return hashlib.sha256(data).hexdigest()
