"""Who may decide a gate now: its approvers (users and ``@group``s), those its escalation
adds once it is due, and never the person who asked when self-approval is off.

Pure but for the group lookup (``groups.Groups``, asked only for ``@`` entries). The
store checks this under the gate's lock (``GateStore.decide``); the server's views and
the dashboard use it to say whether a user may answer.
"""

import time
from collections.abc import Callable

from .errors import NotPermitted
from .record import GateRecord, iso

ANYONE = "*"  # what admits a user of a gate without approvers
Members = Callable[[str], frozenset[str]]  # group name (no '@') -> its members


def escalation_time(record: GateRecord) -> float | None:
    """When the gate's escalation is due (None: it has none)."""
    escalation = record.spec.escalate
    return record.created + escalation.after if escalation is not None else None


def escalated(record: GateRecord, now: float | None = None) -> bool:
    """Whether the escalation's deciders may decide (it is due, the gate still open)."""
    due = escalation_time(record)
    return due is not None and (time.time() if now is None else now) >= due


def entries(record: GateRecord, now: float | None = None) -> tuple[str, ...] | None:
    """The approver entries in force at ``now`` (None: anyone)."""
    spec = record.spec
    if spec.approvers is None:
        return None
    extra = spec.escalate.deciders if spec.escalate and escalated(record, now) else ()
    return (*spec.approvers, *(e for e in extra if e not in spec.approvers))


def admitting(
    record: GateRecord, user: str, members: Members, now: float | None = None
) -> str | None:
    """The approver entry that lets ``user`` decide (a name, ``@group``, or ``*`` when
    anyone may), or None; self-approval is :func:`refusal`'s business."""
    allowed = entries(record, now)
    if allowed is None:
        return ANYONE
    if user in allowed:
        return user
    for entry in allowed:
        if entry.startswith("@") and user in members(entry[1:]):
            return entry
    return None


def via_escalation(record: GateRecord, entry: str) -> bool:
    """Whether ``entry`` is an approver only because the escalation added it."""
    spec = record.spec
    return entry != ANYONE and spec.approvers is not None and entry not in spec.approvers


def admission(record: GateRecord, entry: str, user: str) -> dict[str, object]:
    """What an answer's audit entry says of why its author could decide, when it is not
    that they are named among the approvers: ``as`` (the @group, or the escalation's
    entry) and ``escalated``."""
    found: dict[str, object] = {}
    if entry not in (user, ANYONE):
        found["as"] = entry
    if via_escalation(record, entry):
        found.update({"as": entry, "escalated": True})
    return found


def refusal(
    record: GateRecord, user: str, members: Members, now: float | None = None
) -> tuple[str | None, NotPermitted | None]:
    """The admitting entry, or why ``user`` may not decide (``reason`` for the audit log
    in the error's ``args[1]``)."""
    spec, gid = record.spec, record.id
    entry = admitting(record, user, members, now)
    if entry is None:
        names = ", ".join(spec.approvers or ())
        due = escalation_time(record)
        later = ""
        if (
            spec.escalate
            and spec.escalate.deciders
            and due is not None
            and not escalated(record, now)
        ):
            later = f"; from {iso(due)} also {', '.join(spec.escalate.deciders)}"
        elif spec.escalate and spec.escalate.deciders:
            later = f" and (escalated) {', '.join(spec.escalate.deciders)}"
        return None, NotPermitted(
            f"{user} may not decide gate {gid}: approvers are {names}{later}",
            "not an approver",
        )
    if not spec.allow_self_approval and user == record.requested_by:
        return None, NotPermitted(
            f"{user} started the run that asks; gate {gid} does not allow self-approval: "
            "another approver must decide",
            "self-approval",
        )
    return entry, None


def may_decide(record: GateRecord, user: str, members: Members, now: float | None = None) -> bool:
    """Whether ``user`` may answer the gate now (the store has the final word)."""
    return record.decision is None and refusal(record, user, members, now)[1] is None
