"""The waiting loop shared by the executor and ``await``, and the news it sends: what
falls due when, claimed once across processes, late when nobody was watching."""

import time

import pytest

from snakemake_human_gate import gate
from snakemake_human_gate.errors import NotPermitted
from snakemake_human_gate.news import LATE_AFTER, STALE_AFTER, News, due, next_due
from snakemake_human_gate.waiting import Waiter


class Told:
    """An announcer that records what it is asked to send."""

    def __init__(self, targets=True):
        self.sent = []
        self.targets = targets

    def has_targets(self, record, event=None):
        return self.targets

    def announce(self, record, event=None, late=False):
        self.sent.append((record.id, event, late))

    def report_failure(self, gate_id, error):
        self.sent.append((gate_id, "failure", error))


def ask(store, artifact, spec, run="1"):
    record, _ = store.ask(
        rule="review",
        wildcards={"run": run},
        inputs=[artifact],
        output=artifact.parent / f"out-{run}.json",
        spec=spec,
        requested_by="runner",
    )
    return record


def test_reminders_fall_due_once_per_interval_and_only_the_latest_is_owed(store, artifact):
    record = ask(store, artifact, gate("Q?", remind="1h", timeout="1d", on_timeout="reject"))
    start = record.created
    assert due(record, start + 10) == []
    assert next_due(record, start + 10) == start + 3600
    (owed,) = due(record, start + 3 * 3600 + 5)  # nobody watched for three hours
    assert (owed.key, owed.event, owed.at) == ("reminder-3", "reminder", start + 3 * 3600)
    assert next_due(record, start + 23.5 * 3600) == start + 86400  # the timeout comes first


def test_news_is_claimed_once_across_processes_and_late_when_nobody_watched(store, artifact):
    record = ask(store, artifact, gate("Q?", remind=3600))
    first, second = Told(), Told()
    later = record.created + 3600 + LATE_AFTER + 1
    News(store, first).send(record, later)
    News(store, second).send(store.get(record.id), later)  # another process, same moment
    assert first.sent == [(record.id, "reminder", True)] and second.sent == []
    decided = store.decide(record.id, "approve", actor="alice")
    News(store, second).send(decided)
    News(store, first).send(store.get(record.id))
    assert second.sent == [(record.id, "decided", False)] and len(first.sent) == 1
    assert due(store.get(record.id), decided.decided_at + STALE_AFTER + 1) == []


def test_news_nobody_would_receive_is_not_claimed(store, artifact):
    record = ask(store, artifact, gate("Q?"))
    decided = store.decide(record.id, "approve", actor="alice")
    News(store, Told(targets=False)).send(decided)
    assert "decided" not in store.get(record.id).news  # left for a process that has targets
    told = Told()
    News(store, told).send(store.get(record.id))
    assert told.sent == [(record.id, "decided", False)]


def test_an_escalation_widens_the_deciders_only_when_due_and_always_audited_first(store, artifact):
    spec = gate("Q?", approvers=["alice"], escalate={"after": 0.2, "to": ["bob"]})
    record = ask(store, artifact, spec)
    with pytest.raises(NotPermitted, match=r"approvers are alice; from .* also bob"):
        store.decide(record.id, "approve", actor="bob")
    time.sleep(0.25)
    decided = store.decide(record.id, "approve", actor="bob")  # no process applied it before
    assert decided.decision.by == ["bob"]
    events = [(e["event"], e["actor"]) for e in store.audit.entries()]
    assert events == [
        ("asked", "runner"),
        ("refused", "bob"),
        ("escalated", "escalation"),
        ("decided", "bob"),
    ]
    told = Told()
    News(store, told).send(store.get(record.id))
    assert told.sent == [(record.id, "decided", False)]  # the escalation itself was applied


def test_a_gate_reset_while_it_waits_is_asked_again_and_a_decision_ends_the_wait(store, artifact):
    spec = gate("Q?")
    record = ask(store, artifact, spec)
    asked, decided, said = [], [], []

    def again():
        asked.append(1)
        return ask(store, artifact, spec)

    waiter = Waiter(store, None, 0.01, said.append)
    waiter.watch(record, again, decided.append)
    waiter.look()
    store.archive(record.id, "reopened", actor="alice")
    waiter.look()
    assert asked == [1] and said == [f"gate {record.id} was reset; asking again"]
    assert waiter.watching() == [record.id] and store.get(record.id).decision is None
    store.decide(record.id, "reject", actor="alice")
    waiter.until_decided()
    assert [r.decision.choice for r in decided] == ["reject"] and waiter.watching() == []
