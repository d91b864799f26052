"""A gate's life besides its answers: a definition changed while it waits, several
working directories waiting on it, re-review (reopen and the rerun marks)."""

import json

import pytest

from snakemake_human_gate import gate
from snakemake_human_gate.errors import NotPermitted, UnknownGate
from snakemake_human_gate.outcome import settle
from snakemake_human_gate.reopen import reopen
from snakemake_human_gate.rerun import clear, mark, marks


def ask(store, artifact, spec, output=None, requested_by="runner"):
    return store.ask(
        rule="review",
        wildcards={"run": "1"},
        inputs=[artifact],
        output=output or artifact.parent / "wd1" / "gates" / "review.json",
        spec=spec,
        requested_by=requested_by,
    )


def test_a_waiting_gate_whose_definition_changed_is_asked_again_under_the_new_one(store, artifact):
    before = gate("Ship it?", approvers=["alice", "bob", "carol"], quorum=2)
    record, _ = ask(store, artifact, before)
    store.decide(record.id, "approve", actor="alice")  # one vote of two

    after = gate("Ship it to production?", approvers=["bob"], quorum=1)
    again, new = ask(store, artifact, after)
    assert new and again.id == record.id
    assert again.spec == after and again.votes == []  # votes under the old one do not count
    changed = ["question", "approvers", "quorum"]
    assert again.previous == {"asked": record.created, "changed": changed}
    assert store.get(record.id).spec.question == "Ship it to production?"
    with pytest.raises(NotPermitted, match="alice may not decide"):
        store.decide(record.id, "approve", actor="alice")  # no longer an approver
    assert store.decide(record.id, "approve", actor="bob").decision.by == ["bob"]
    events = [(e["event"], e.get("changed")) for e in store.audit.entries()]
    assert events == [
        ("asked", None),
        ("voted", None),
        ("redefined", ["question", "approvers", "quorum"]),
        ("asked", None),
        ("refused", None),
        ("decided", None),
    ]
    archived = sorted(p.name for p in (store.root / "archive").iterdir())
    assert len(archived) == 2  # the old asking and its vote, kept


def test_a_decided_gate_keeps_its_decision_when_its_definition_changes(store, artifact):
    record, _ = ask(store, artifact, gate("Ship?", approvers=["alice", "bob"]))
    store.decide(record.id, "approve", actor="alice")
    tighter = gate("Ship?", approvers=["bob"])
    again, new = ask(store, artifact, tighter)
    assert not new and again.decision.by == ["alice"]
    assert again.spec.changes(tighter) == ["approvers"]  # what the executor reports


def test_every_working_directory_waiting_gets_the_decision_in_its_own_output(
    store, artifact, tmp_path
):
    spec = gate("Ship?")
    first, _ = ask(store, artifact, spec, output=tmp_path / "wd1/gates/review.json")
    second, new = ask(store, artifact, spec, output=tmp_path / "wd2/gates/review.json")
    assert not new and second.id == first.id
    assert store.get(first.id).outputs == [
        str(tmp_path / "wd1/gates/review.json"),
        str(tmp_path / "wd2/gates/review.json"),
    ]
    decided = store.decide(first.id, "approve", actor="alice")
    assert settle(decided, str(tmp_path / "wd2/gates/review.json")) is None
    assert json.loads((tmp_path / "wd2/gates/review.json").read_text())["by"] == ["alice"]
    assert not (tmp_path / "wd1/gates/review.json").exists()  # not written into another run
    assert [e["event"] for e in store.audit.entries()] == ["asked", "decided"]


def test_reopen_withdraws_the_decision_from_every_output_and_marks_them(store, artifact, tmp_path):
    spec = gate("Ship?")
    outputs = [tmp_path / "wd1/gates/review.json", tmp_path / "wd2/gates/review.json"]
    record, _ = ask(store, artifact, spec, output=outputs[0])
    ask(store, artifact, spec, output=outputs[1])
    decided = store.decide(record.id, "approve", actor="alice")
    for output in outputs:
        settle(decided, str(output))
    unrelated = tmp_path / "wd3" / "review.json"
    unrelated.parent.mkdir()
    unrelated.write_text('{"gate": "someone-else"}')

    done = reopen(store, record.id, actor="bob")
    assert done.removed == [str(o) for o in outputs]
    assert not any(o.exists() for o in outputs)
    with pytest.raises(UnknownGate):
        store.get(record.id)
    found = marks(store)
    assert sorted(found) == [str(o) for o in outputs]
    assert found[str(outputs[0])].why == "reopened by bob"
    entry = [e for e in store.audit.entries() if e["event"] == "reopened"]
    assert [(e["actor"], e["was"]) for e in entry] == [("bob", "decided")]

    # asked again: a decision of that asking clears the mark of the output it is written to
    again, new = ask(store, artifact, spec, output=outputs[0])
    assert new
    assert not clear(store, str(outputs[0]), found[str(outputs[0])].at - 1)  # an older asking
    assert clear(store, str(outputs[0]), again.created)
    assert list(marks(store)) == [str(outputs[1])]


def test_a_later_mark_survives_a_decision_of_an_earlier_asking(store, artifact, tmp_path):
    output = str(tmp_path / "out.json")
    record, _ = ask(store, artifact, gate("Ship?"), output=output)
    mark(store, output, record.id, "rejected by bob", record.created + 10)
    assert not clear(store, output, record.created)
    assert marks(store)[output].why == "rejected by bob"
