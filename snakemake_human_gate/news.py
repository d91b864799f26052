"""News of a gate that falls due while it waits or once it is decided: the decision (or
timeout), reminders every ``remind`` seconds, and the escalation after ``escalate``'s
``after``.

Whichever process is live sends it — a running Snakemake (its gates), ``snakemake-gate
await``, or ``snakemake-gate serve`` (every gate of its store) — and only once: the
process first claims the news in the gate's answers file (``GateStore.claim``; the
escalation with its audit entry, ``GateStore.escalate``), and only the one whose claim
succeeds sends it. When no process was live at the time, the next one sends it, marked
late; of the reminders missed, only the latest is sent, and a decision more than a day
old is not announced any more. Each delivery is audited (``notified``,
``notify-failed``) by the announcer.
"""

import math
import os
import socket
import time
from dataclasses import dataclass

from .announce import Announcer
from .deciders import escalated, escalation_time
from .errors import GateError, UnknownGate
from .messages import event_of
from .record import GateRecord
from .store import GateStore

LATE_AFTER = 300.0  # seconds after it fell due: news sent later says it is late
STALE_AFTER = 86400.0  # a decision older than this is history: not announced any more


@dataclass(frozen=True)
class Due:
    key: str  # what is claimed: decided, reminder-N, escalated
    event: str  # what the message says: decided, timed_out, reminder, escalated
    at: float  # when it fell due


def due(record: GateRecord, now: float) -> list[Due]:
    """The news of ``record`` owed at ``now`` and not sent yet."""
    sent = record.news
    if record.decision is not None:
        at = record.decided_at or record.created
        if "decided" in sent or now - at > STALE_AFTER:
            return []
        return [Due("decided", event_of(record), at)]
    spec, found = record.spec, []
    if spec.escalate is not None and escalated(record, now) and "escalated" not in sent:
        found.append(Due("escalated", "escalated", record.created + spec.escalate.after))
    if spec.remind is not None:
        number = int((now - record.created) // spec.remind)
        if number >= 1 and f"reminder-{number}" not in sent:
            at = record.created + number * spec.remind
            found.append(Due(f"reminder-{number}", "reminder", at))
    return found


def next_due(record: GateRecord, now: float) -> float:
    """When something next falls due for a pending gate: its timeout, its next reminder
    or its escalation (inf: nothing will)."""
    if record.decision is not None:
        return math.inf
    spec = record.spec
    times = [record.created + spec.timeout] if spec.timeout is not None else []
    escalation = escalation_time(record)
    if escalation is not None and escalation > now:
        times.append(escalation)
    if spec.remind is not None:
        number = int((now - record.created) // spec.remind) + 1
        times.append(record.created + number * spec.remind)
    return min(times, default=math.inf)


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class News:
    """Sends what is due of the gates it is shown, once across every live process."""

    def __init__(self, store: GateStore, announcer: Announcer) -> None:
        self.store = store
        self.announcer = announcer
        self.by = process_name()

    def send(self, record: GateRecord, now: float | None = None) -> GateRecord:
        """Claim and send the news due of ``record``; the record as it then stands."""
        now = time.time() if now is None else now
        for item in due(record, now):
            try:
                if item.key == "escalated":  # applied (and audited) even if nobody is told
                    claimed = self.store.escalate(record.id)
                elif self.announcer.has_targets(record, item.event):
                    claimed = self.store.claim(record.id, item.key, self.by)
                else:
                    continue
            except UnknownGate:  # reopened meanwhile: the new asking has news of its own
                return record
            if claimed is None:  # another process sent it (or the gate changed): look again
                continue
            record = claimed
            if self.announcer.has_targets(record, item.event):
                self.announcer.announce(record, item.event, late=now - item.at > LATE_AFTER)
        return record

    def send_safely(self, record: GateRecord) -> GateRecord:
        """:meth:`send`, a store error logged rather than raised (news never stops a run)."""
        try:
            return self.send(record)
        except (GateError, OSError) as e:
            self.announcer.report_failure(record.id, f"news not sent: {e}")
            return record
