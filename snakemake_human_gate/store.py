"""The gate store: a directory of gate records, write-once decisions, an audit log.

Layout (default ``.snakemake/gates`` under the workflow directory)::

    store.json          share mode chosen when the store was created
    gates/<id>.json     what the gate asks: written once (atomically), never changed
    gates/<id>.answers  its votes and decision: JSON lines, appended (one write each)
    archive/            gates removed by ``reset`` (both files)
    locks/              lock files
    audit.jsonl, audit.head

Every operation that changes a gate holds the gate's lock, re-reads the gate and
appends one line to its answers, flushed before it returns; every attempt is audited,
and each answer is confirmed by its audit entry (:mod:`.answers`). A reader needs no
lock: it sees each line whole or not at all (a line without its newline is still being
written, or was torn by a crash and never acknowledged); only an answer not yet
confirmed makes it wait for the gate's lock and settle it (confirmed by its audit
entry, or discarded if its writer died before writing one). Nothing below the root is
reached through a link, and only regular files are read (:mod:`.storefs`).
"""

import contextlib
import hashlib
import json
import os
import socket
import stat
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .audit import AuditLog
from .errors import Conflict, InvalidInput, NotPermitted, UnknownGate
from .fsutil import modes
from .gatefiles import ANSWERS, Discarded, GateFiles
from .record import TIMEOUT_ACTOR, Decision, GateRecord, Vote, check_gate_id, iso
from .signing import current_user
from .spec import GateSpec
from .storefs import StoreTree, UnsafeFile, open_regular, write_atomic
from .text import check_text, check_values, json_text

ENV_DIR = "SNAKEMAKE_GATE_DIR"
ENV_SHARE = "SNAKEMAKE_GATE_SHARE"
DEFAULT_DIR = Path(".snakemake") / "gates"
CONFIG_LIMIT = 1 << 16
__all__ = ["Discarded", "GateStore", "Problem", "TIMEOUT_ACTOR", "current_user"]


def default_via() -> str:
    return f"cli@{socket.gethostname()}"


def resolve_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """--dir, else $SNAKEMAKE_GATE_DIR, else .snakemake/gates here."""
    chosen = path or os.environ.get(ENV_DIR) or DEFAULT_DIR
    return Path(chosen).expanduser().absolute()


def file_digest(path: Path) -> str:
    """SHA-256 of a regular file (a FIFO or a device is refused, not read)."""
    h = hashlib.sha256()
    with os.fdopen(open_regular(path), "rb") as f:
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
        self.tree = StoreTree(root)
        self.os_user = current_user()
        made = not root.is_dir()
        root.mkdir(parents=True, exist_ok=True)
        try:
            config = json.loads(self.tree.read("store.json", limit=CONFIG_LIMIT))
            share = config.get("share", "private")
        except FileNotFoundError:
            config = None
            share = share or os.environ.get(ENV_SHARE) or "private"
        except ValueError as e:
            raise InvalidInput(f"{root / 'store.json'} is not valid JSON: {e}") from None
        self.share = share
        try:
            self.file_mode, self.dir_mode = modes(share)
        except ValueError as e:
            raise InvalidInput(f"{e} (from ${ENV_SHARE} or the store's store.json)") from None
        if made:
            os.chmod(root, self.dir_mode)
        for sub in ("gates", "locks", "archive"):
            self.tree.make_dir(sub, mode=self.dir_mode)
        if config is None:
            with self.tree.dir() as d:
                data = json_text({"share": share}).encode()
                write_atomic(d, "store.json", data, self.file_mode, self.tree.shown("store.json"))
        self.audit = AuditLog(self.tree, self.file_mode)
        self.files = GateFiles(self.tree, self.audit, self.file_mode)

    @property
    def discarded(self) -> list[Discarded]:
        """Answers this object found never audited, and discarded (for its caller to
        report; each is in the audit log too)."""
        return self.files.discarded

    def _confirmed(self, g: int, gid: str) -> GateRecord:
        """The record once no answer waits for a confirmation (under the gate's lock);
        an answer discarded is audited as this process's user's doing."""
        return self.files.confirmed(g, gid, self.os_user)

    # -- reading ------------------------------------------------------------------

    def path(self, gid: str) -> Path:
        return self.root / "gates" / f"{check_gate_id(gid)}.json"

    def answers_path(self, gid: str) -> Path:
        return self.root / "gates" / f"{check_gate_id(gid)}{ANSWERS}"

    def has(self, gid: str) -> bool:
        """Whether a gate of that id is in the store (an invalid id: no)."""
        try:
            with self.tree.dir("gates") as g:
                info = os.stat(f"{check_gate_id(gid)}.json", dir_fd=g, follow_symlinks=False)
        except (InvalidInput, FileNotFoundError):
            return False
        return stat.S_ISREG(info.st_mode)

    def get(self, gid: str) -> GateRecord:
        """The gate as it stands; an answer not confirmed yet is waited for (its writer
        holds the lock), or confirmed now if its writer died (see :mod:`.answers`)."""
        with self.tree.dir("gates") as g:
            record, unconfirmed = self.files.read(g, gid)
        if not unconfirmed:
            return record
        try:
            with self._lock(gid), self.tree.dir("gates") as g:
                return self._confirmed(g, gid)
        except PermissionError:  # a read-only member: the answer is not shown until confirmed
            return record

    def version(self, gid: str) -> tuple[int, int]:
        """Changes whenever the gate does (FileNotFoundError once it is reset)."""
        with self.tree.dir("gates") as g:
            asked = os.stat(f"{check_gate_id(gid)}.json", dir_fd=g, follow_symlinks=False)
            try:
                size = os.stat(f"{gid}{ANSWERS}", dir_fd=g, follow_symlinks=False).st_size
            except FileNotFoundError:
                size = 0
        return asked.st_ino, size

    def scan(self) -> tuple[list[GateRecord], list[Problem]]:
        """Every record, and every file that is not one (reported, never fatal)."""
        records, problems = [], []
        with self.tree.dir("gates") as g:
            names = set(os.listdir(g))
            for name in sorted(names):
                record = self._scan_one(g, name, names)
                if isinstance(record, GateRecord):
                    records.append(record)
                elif record:
                    problems.append(Problem(self.root / "gates" / name, record))
        return records, problems

    def _scan_one(self, g: int, name: str, names: set[str]) -> GateRecord | str:
        """The record in file ``name``, or what is wrong with it ("" for no record)."""
        if name.startswith(".") and name.endswith(".tmp"):
            return ""  # a write in progress
        stem, _, suffix = name.rpartition(".")
        if f".{suffix}" == ANSWERS:
            return "" if f"{stem}.json" in names else "answers of no gate (left by a reset)"
        if suffix != "json" or not stem:
            return "not a gate record (expected <id>.json)"
        try:
            record, unconfirmed = self.files.read(g, stem)
            return self.get(stem) if unconfirmed else record
        except (UnsafeFile, InvalidInput, UnknownGate, OSError) as e:
            return f"unreadable gate record: {e}"

    # -- changing -------------------------------------------------------------------

    def _lock(self, gid: str, at: int | None = None) -> contextlib.AbstractContextManager[None]:
        lock = f"{check_gate_id(gid)}.lock"
        return self.tree.locked("locks", lock, mode=self.file_mode, at=at)

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
        with self._lock(gid), self.tree.dir("gates") as g:
            try:
                return self._confirmed(g, gid), False
            except UnknownGate:
                pass
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
            digest = self.files.create(g, record)
            self.audit.append(
                "asked",
                gid,
                requested_by,
                via=via,
                question=spec.question,
                rule=rule,
                record=digest,
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

        with self.tree.dir() as root, self._lock(gid, root), self.tree.dir("gates", at=root) as g:
            try:
                record = self._confirmed(g, gid)
            except UnknownGate as e:
                raise refuse(e, "unknown gate") from None
            if record.due():
                self._apply_timeout(g, record)
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
            self.files.answer(
                g,
                gid,
                vote,
                record.decision,
                "decided" if record.decision else "voted",
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
            with self._lock(gid), self.tree.dir("gates") as g:
                record = self._confirmed(g, gid)
                if record.due():
                    self._apply_timeout(g, record)
        return record

    def scan_current(self) -> tuple[list[GateRecord], list[Problem]]:
        """:meth:`scan`, with every timeout that has passed applied."""
        records, problems = self.scan()
        expired = {r.id: r for r in self.expire_due(records)}
        return [expired.get(r.id, r) for r in records], problems

    def expire_due(self, records: Iterable[GateRecord] | None = None) -> list[GateRecord]:
        """Apply ``on_timeout`` to every pending gate whose timeout has passed."""
        due = [r for r in (records if records is not None else self.scan()[0]) if r.due()]
        return [record for r in due if (record := self.current(r.id)).status == "expired"]

    def _apply_timeout(self, g: int, record: GateRecord) -> None:
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
        self.files.answer(
            g, record.id, None, record.decision, "timeout", TIMEOUT_ACTOR, choice=spec.on_timeout
        )

    def reset(self, gid: str, *, actor: str | None = None, via: str | None = None) -> None:
        """Forget a gate (archived): its job asks anew."""
        actor = actor or current_user()
        with self._lock(gid), self.tree.dir("gates") as g, self.tree.dir("archive") as a:
            record = self._confirmed(g, gid)
            archived = f"{gid}.{int(time.time() * 1000)}"
            # first: the gate is gone at once (a link in its place is moved, not followed)
            os.rename(f"{gid}.json", f"{archived}.json", src_dir_fd=g, dst_dir_fd=a)
            with contextlib.suppress(FileNotFoundError):
                os.rename(f"{gid}{ANSWERS}", f"{archived}{ANSWERS}", src_dir_fd=g, dst_dir_fd=a)
            self.audit.append("reset", gid, actor, via=via or default_via(), was=record.status)
