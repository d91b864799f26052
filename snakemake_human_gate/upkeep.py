"""What happens to gates besides their answers, as time passes and runs come and go:
timeouts applied, escalations that fell due, news claimed by the process that sends it,
gates archived (reopened, or redefined while they wait).

A mixin of :class:`~.store.GateStore` (kept apart to keep each module small); every
change holds the gate's lock and is audited.
"""

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from . import deciders
from .audit import AuditLog
from .gatefiles import ANSWERS, GateFiles
from .record import TIMEOUT_ACTOR, Decision, GateRecord, iso, news
from .signing import current_user
from .storefs import StoreTree

ESCALATION_ACTOR = "escalation"  # who the audit log names for an escalation that fell due


class Upkeep:
    tree: StoreTree
    audit: AuditLog
    files: GateFiles
    _lock: Callable[..., contextlib.AbstractContextManager[None]]
    _confirmed: Callable[[int, str], GateRecord]
    get: Callable[[str], GateRecord]
    scan: Callable[[], tuple[list[GateRecord], list[Any]]]
    default_via: Callable[[], str]

    def current(self, gid: str) -> GateRecord:
        """The record as it stands now: a timeout that has passed is applied first."""
        record = self.get(gid)
        if record.due():
            with self._lock(gid), self.tree.dir("gates") as g:
                record = self._confirmed(g, gid)
                if record.due():
                    self._apply_timeout(g, record)
        return record

    def scan_current(self) -> tuple[list[GateRecord], list[Any]]:
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

    def escalate(self, gid: str) -> GateRecord | None:
        """Apply the gate's escalation if it is due and not applied yet (audited as
        ``escalated``): the record, or None when there was nothing to do."""
        with self._lock(gid), self.tree.dir("gates") as g:
            record = self._confirmed(g, gid)
            if record.decision is not None or not deciders.escalated(record):
                return None
            return record if self._escalate(g, record, time.time()) else None

    def _escalate(self, g: int, record: GateRecord, now: float) -> bool:
        if "escalated" in record.news:
            return False
        escalation = record.spec.escalate
        assert escalation is not None
        self.audit.append(
            "escalated",
            record.id,
            ESCALATION_ACTOR,
            deciders=list(escalation.deciders),
            targets=list(escalation.targets),
            after=escalation.after,
        )
        self.files.note(g, record.id, news("escalated", ESCALATION_ACTOR, now))
        record.news["escalated"] = now
        return True

    def claim(self, gid: str, key: str, by: str) -> GateRecord | None:
        """Claim the news ``key`` of the gate for the process ``by``, which then sends it:
        the record as it stands, or None if another process claimed it already."""
        with self._lock(gid), self.tree.dir("gates") as g:
            record = self._confirmed(g, gid)
            if key in record.news:
                return None
            now = time.time()
            self.files.note(g, gid, news(key, by, now))
            record.news[key] = now
            return record

    def archive(
        self, gid: str, event: str, *, actor: str | None = None, via: str | None = None
    ) -> GateRecord:
        """Move the gate to ``archive/`` (audited as ``event``): its job asks anew; the
        record as it was."""
        actor = actor or current_user()
        with (
            self.tree.dir() as root,
            self._lock(gid, root),
            self.tree.dir("gates", at=root) as g,
            self.tree.dir("archive", at=root) as a,
        ):
            record = self._confirmed(g, gid)
            self._archive(g, a, record, event, actor, via or self.default_via())
        return record

    def _archive(
        self, g: int, a: int, record: GateRecord, event: str, actor: str, via: str, **details: Any
    ) -> None:
        gid = record.id
        archived = f"{gid}.{int(time.time() * 1000)}"
        # first: the gate is gone at once (a link in its place is moved, not followed)
        os.rename(f"{gid}.json", f"{archived}.json", src_dir_fd=g, dst_dir_fd=a)
        with contextlib.suppress(FileNotFoundError):
            os.rename(f"{gid}{ANSWERS}", f"{archived}{ANSWERS}", src_dir_fd=g, dst_dir_fd=a)
        self.audit.append(event, gid, actor, via=via, was=record.status, **details)
