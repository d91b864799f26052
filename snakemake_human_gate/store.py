"""The gate store: a directory of gate records, write-once decisions, an audit log.

Layout (default ``.snakemake/gates`` under the workflow directory)::

    store.json          share mode chosen when the store was created
    gates/<id>.json     what the gate asks: written once (atomically), never changed
    gates/<id>.answers  its votes and decision: JSON lines, appended (one write each)
    archive/            gates removed by ``reset`` (both files)
    locks/              lock files
    audit.jsonl, audit.head

Every operation that changes a gate holds the gate's lock, re-reads the gate and
appends one line to its answers, flushed before it returns; every attempt is audited.
A reader needs no lock: it sees each line whole or not at all (a line without its
newline is still being written, or was torn by a crash and never acknowledged).
"""

import contextlib
import hashlib
import json
import os
import pwd
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .audit import AuditLog
from .errors import Conflict, InvalidInput, NotPermitted, UnknownGate
from .fsutil import (
    FileLock,
    append_durably,
    ensure_dir,
    modes,
    open_shared,
    read_bytes,
    write_json_atomic,
)
from .record import Decision, GateRecord, Vote, answer, check_gate_id, iso
from .spec import GateSpec
from .text import check_text, check_values, json_line

ENV_DIR = "SNAKEMAKE_GATE_DIR"
ENV_SHARE = "SNAKEMAKE_GATE_SHARE"
DEFAULT_DIR = Path(".snakemake") / "gates"
ANSWERS = ".answers"
TIMEOUT_ACTOR = "timeout"


def current_user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def default_via() -> str:
    return f"cli@{socket.gethostname()}"


def resolve_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """--dir, else $SNAKEMAKE_GATE_DIR, else .snakemake/gates here."""
    chosen = path or os.environ.get(ENV_DIR) or DEFAULT_DIR
    return Path(chosen).expanduser().absolute()


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def gate_id(rule: str, wildcards: Mapping[str, str], input_digests: Iterable[str]) -> str:
    """Same rule, wildcards and input contents -> same id: never ask twice."""
    h = hashlib.sha256()
    h.update(json.dumps([rule, sorted(wildcards.items()), list(input_digests)]).encode())
    return f"{rule}-{h.hexdigest()[:12]}"


@dataclass(frozen=True)
class Problem:
    """A file in the store that is not a readable gate record."""

    path: Path
    reason: str


class GateStore:
    def __init__(self, root: Path, share: str | None = None) -> None:
        self.root = root
        config = root / "store.json"
        if config.exists():
            share = json.loads(config.read_text()).get("share", "private")
        else:
            share = share or os.environ.get(ENV_SHARE) or "private"
        self.share = share
        try:
            self.file_mode, self.dir_mode = modes(share)
        except ValueError as e:
            raise InvalidInput(f"{e} (from ${ENV_SHARE} or the store's store.json)") from None
        for sub in (root, root / "gates", root / "locks", root / "archive"):
            ensure_dir(sub, self.dir_mode)
        if not config.exists():
            write_json_atomic(config, {"share": share}, self.file_mode)
        self.audit = AuditLog(root, self.file_mode)

    # -- reading ------------------------------------------------------------------

    def path(self, gid: str) -> Path:
        return self.root / "gates" / f"{check_gate_id(gid)}.json"

    def answers_path(self, gid: str) -> Path:
        return self.root / "gates" / f"{check_gate_id(gid)}{ANSWERS}"

    def get(self, gid: str) -> GateRecord:
        path = self.path(gid)
        try:
            return self._read(str(path), str(self.answers_path(gid)))
        except FileNotFoundError:
            raise UnknownGate(f"no gate {gid!r} (see 'snakemake-gate list --all')") from None
        except (ValueError, KeyError, TypeError) as e:
            raise InvalidInput(f"gate file {path} is not a valid gate record: {e}") from None

    def version(self, gid: str) -> tuple[int, int]:
        """Changes whenever the gate does (FileNotFoundError once it is reset)."""
        asked = self.path(gid).stat().st_ino
        try:
            return asked, self.answers_path(gid).stat().st_size
        except FileNotFoundError:
            return asked, 0

    @staticmethod
    def _read(asked: str, answers: str) -> GateRecord:
        """The record in file ``asked`` with the lines of file ``answers`` applied."""
        record = GateRecord.from_json(json.loads(read_bytes(asked)))
        try:
            text = read_bytes(answers)
        except FileNotFoundError:  # not answered yet, in a store made before answers files
            return record
        for line in text.split(b"\n")[:-1]:  # the last is empty, or still being written
            try:
                entry = json.loads(line)
            except ValueError:  # torn by a crash: never acknowledged
                continue
            record.apply(entry)
        return record

    def scan(self) -> tuple[list[GateRecord], list[Problem]]:
        """Every record, and every file that is not one (reported, never fatal)."""
        records, problems = [], []
        directory = self.root / "gates"
        names = set(os.listdir(directory))
        for name in sorted(names):
            record = self._scan_one(directory, name, names)
            if isinstance(record, GateRecord):
                records.append(record)
            elif record:
                problems.append(Problem(directory / name, record))
        return records, problems

    def _scan_one(self, directory: Path, name: str, names: set[str]) -> GateRecord | str:
        """The record in file ``name``, or what is wrong with it ("" for no record)."""
        if name.startswith(".") and name.endswith(".tmp"):
            return ""  # a write in progress
        stem, _, suffix = name.rpartition(".")
        if f".{suffix}" == ANSWERS:
            return "" if f"{stem}.json" in names else "answers of no gate (left by a reset)"
        if suffix != "json" or not stem:
            return "not a gate record (expected <id>.json)"
        try:
            record = self._read(f"{directory}/{name}", f"{directory}/{stem}{ANSWERS}")
        except (OSError, ValueError, KeyError, TypeError) as e:
            return f"unreadable gate record: {e}"
        if record.id != stem:
            return f"file name does not match its id {record.id!r}"
        return record

    # -- changing -------------------------------------------------------------------

    def _lock(self, gid: str) -> FileLock:
        return FileLock(self.root / "locks" / f"{gid}.lock", self.file_mode)

    def _clear_answers(self, gid: str) -> None:
        """An empty answers file, made now so that answering need not create one (and
        flush the directory); answers left by an interrupted reset are dropped."""
        fd = open_shared(self.answers_path(gid), os.O_WRONLY | os.O_CLOEXEC, self.file_mode)
        try:
            if os.fstat(fd).st_size:  # (a new file needs no flush: lost, it reads as empty)
                os.ftruncate(fd, 0)
                os.fsync(fd)
        finally:
            os.close(fd)

    def _answer(self, gid: str, vote: Vote | None, decision: Decision | None) -> None:
        append_durably(self.answers_path(gid), json_line(answer(vote, decision)), self.file_mode)

    def ask(
        self,
        *,
        rule: str,
        wildcards: Mapping[str, str],
        inputs: Iterable[str | os.PathLike[str]],
        output: str | os.PathLike[str],
        spec: GateSpec,
        requested_by: str | None = None,
        via: str = "snakemake",
    ) -> tuple[GateRecord, bool]:
        """The gate for these inputs, created (and audited) only if new."""
        paths = [Path(p).absolute() for p in inputs]
        digests = [file_digest(p) for p in paths]
        gid = gate_id(rule, wildcards, digests)
        requested_by = requested_by or current_user()
        with self._lock(gid):
            if self.path(gid).exists():
                return self.get(gid), False
            record = GateRecord(
                id=gid,
                rule=rule,
                wildcards={k: str(v) for k, v in wildcards.items()},
                inputs=[{"path": str(p), "sha256": d} for p, d in zip(paths, digests, strict=True)],
                output=str(Path(output).absolute()),
                spec=spec,
                requested_by=requested_by,
                created=time.time(),
            )
            check_text(json.dumps(record.to_json(), ensure_ascii=False), "the gate")
            self._clear_answers(gid)
            write_json_atomic(self.path(gid), record.to_json(), self.file_mode)
            self.audit.append(
                "asked", gid, requested_by, via=via, question=spec.question, rule=rule
            )
            return record, True

    def decide(
        self,
        gid: str,
        choice: str,
        values: Mapping[str, Any] | None = None,
        *,
        comment: str = "",
        actor: str | None = None,
        via: str | None = None,
    ) -> GateRecord:
        """Record one decider's answer; the decision stands once the quorum agrees."""
        actor = actor or current_user()
        via = via or default_via()
        values = dict(values or {})
        check_gate_id(gid)

        def refuse(error: Exception, reason: str) -> Exception:
            self.audit.append(
                "refused", gid, actor, via=via, reason=reason, choice=choice, detail=str(error)
            )
            return error

        with self._lock(gid):
            try:
                record = self.get(gid)
            except UnknownGate as e:
                raise refuse(e, "unknown gate") from None
            if record.due():
                self._apply_timeout(record)
            if record.decision is not None:
                d = record.decision
                raise refuse(
                    Conflict(
                        f"gate {gid} is already decided: {d.choice} by {', '.join(d.by)} at {d.at}"
                    ),
                    "already decided",
                )
            spec = record.spec
            if spec.approvers is not None and actor not in spec.approvers:
                raise refuse(
                    NotPermitted(
                        f"{actor} may not decide gate {gid}: approvers are "
                        f"{', '.join(spec.approvers)}"
                    ),
                    "not an approver",
                )
            if not spec.allow_self_approval and actor == record.requested_by:
                raise refuse(
                    NotPermitted(
                        f"{actor} started the run that asks; gate {gid} does not allow "
                        "self-approval: another approver must decide"
                    ),
                    "self-approval",
                )
            try:
                check_text(comment, "the comment")
                check_values(values)
                typed = spec.validate_values(check_text(choice, "the choice"), values)
            except InvalidInput as e:
                raise refuse(e, "invalid") from None
            now = time.time()
            vote = Vote(actor, choice, typed, comment, now, via)
            record.vote(vote)
            agreeing = [v for v in record.votes if v.choice == choice and v.fields == typed]
            if len(agreeing) >= spec.quorum:
                record.decision = Decision(
                    choice=choice,
                    fields=typed,
                    by=[v.by for v in agreeing],
                    at=iso(now),
                    comment="; ".join(v.comment for v in agreeing if v.comment),
                    gate=gid,
                )
            self._answer(gid, vote, record.decision)
            self.audit.append(
                "decided" if record.decision else "voted",
                gid,
                actor,
                via=via,
                choice=choice,
                fields=typed,
                comment=comment,
                votes=len(agreeing),
                quorum=spec.quorum,
            )
            return record

    def current(self, gid: str) -> GateRecord:
        """The record as it stands now: a timeout that has passed is applied first."""
        record = self.get(gid)
        if record.due():
            with self._lock(gid):
                record = self.get(gid)
                if record.due():
                    self._apply_timeout(record)
        return record

    def expire_due(self, records: Iterable[GateRecord] | None = None) -> list[GateRecord]:
        """Apply ``on_timeout`` to every pending gate whose timeout has passed."""
        due = [r for r in (records if records is not None else self.scan()[0]) if r.due()]
        return [record for r in due if (record := self.current(r.id)).status == "expired"]

    def _apply_timeout(self, record: GateRecord) -> None:
        spec = record.spec
        assert spec.on_timeout is not None and spec.timeout is not None
        record.decision = Decision(
            choice=spec.on_timeout,
            fields=spec.validate_values(spec.on_timeout, {}, by_timeout=True),
            by=[TIMEOUT_ACTOR],
            at=iso(record.created + spec.timeout),
            comment=f"no decision within {spec.timeout:g} s",
            timeout=True,
            gate=record.id,
        )
        self._answer(record.id, None, record.decision)
        self.audit.append("timeout", record.id, TIMEOUT_ACTOR, choice=spec.on_timeout)

    def reset(self, gid: str, *, actor: str | None = None, via: str | None = None) -> None:
        """Forget a gate (archived): its job asks anew."""
        actor = actor or current_user()
        with self._lock(gid):
            record = self.get(gid)
            archived = self.root / "archive" / f"{gid}.{int(time.time() * 1000)}.json"
            os.replace(self.path(gid), archived)  # first: the gate is gone at once
            with contextlib.suppress(FileNotFoundError):
                os.replace(self.answers_path(gid), archived.with_suffix(ANSWERS))
            self.audit.append("reset", gid, actor, via=via or default_via(), was=record.status)
