"""Each answer is confirmed by its audit entry: a decision is never visible without it.

A writer killed between the answer and its audit entry is simulated by an exception at
that point (tests/integration/test_store_kill.py kills real processes)."""

import json
import threading
import time

import pytest

from snakemake_human_gate import gate, gatefiles
from snakemake_human_gate.cli import main
from snakemake_human_gate.store import GateStore
from snakemake_human_gate.verify import verify_store


class Killed(BaseException):
    """The process dies here."""


@pytest.fixture
def gid(store, tmp_path):
    artifact = tmp_path / "metrics.json"
    artifact.write_text("{}")
    record, _ = store.ask(
        rule="review",
        wildcards={},
        inputs=[artifact],
        output=tmp_path / "out.json",
        spec=gate("Ship?"),
        requested_by="runner",
    )
    return record.id


def die_at(monkeypatch, target, name, when):
    """Make ``target.name`` raise Killed when ``when(*args, **kwargs)`` says so."""
    real = getattr(target, name)

    def dying(*args, **kwargs):
        if when(*args, **kwargs):
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, dying)


def events(store):
    return [e["event"] for e in store.audit.entries()]


def test_killed_before_its_audit_entry_the_decision_is_never_shown(store, gid, monkeypatch):
    die_at(monkeypatch, store.audit, "append", lambda event, *a, **k: event == "decided")
    with pytest.raises(Killed):
        store.decide(gid, "approve", actor="alice")
    monkeypatch.undo()
    assert '"decision":{' in store.answers_path(gid).read_text()  # written, not confirmed
    reader = GateStore(store.root)
    assert reader.get(gid).decision is None
    assert events(reader) == ["asked", "discarded"]
    (discarded,) = reader.discarded
    assert (discarded.by, discarded.kind, discarded.choice) == ("alice", "decision", "approve")
    assert "never audited" in str(discarded)
    assert reader.decide(gid, "reject", actor="bob").decision.by == ["bob"]  # decidable
    report = verify_store(reader)
    assert report.ok, report.problems
    assert "a decision by alice was never audited" in report.notes[0]


def test_killed_after_its_audit_entry_the_decision_is_confirmed(store, gid, monkeypatch):
    died = lambda fd, line, durable=True: b'"ack"' in line  # noqa: E731
    die_at(monkeypatch, gatefiles, "append_line", died)  # before the confirmation
    with pytest.raises(Killed):
        store.decide(gid, "approve", actor="alice")
    monkeypatch.undo()
    reader = GateStore(store.root)
    assert reader.get(gid).decision.by == ["alice"]
    assert events(reader) == ["asked", "decided"] and reader.discarded == []
    assert verify_store(reader).ok


def test_a_reader_waits_for_a_writer_at_work(store, gid, monkeypatch):
    written, go_on = threading.Event(), threading.Event()
    real = store.audit.append

    def slow_append(event, *args, **kwargs):
        if event == "decided":  # the answer is in its file; the entry is not yet
            written.set()
            go_on.wait(10)
        return real(event, *args, **kwargs)

    monkeypatch.setattr(store.audit, "append", slow_append)
    writer = threading.Thread(target=store.decide, args=(gid, "approve"), kwargs={"actor": "a"})
    writer.start()
    assert written.wait(10)
    seen = {}
    reader = threading.Thread(target=lambda: seen.update(r=GateStore(store.root).get(gid)))
    reader.start()
    time.sleep(0.3)
    assert reader.is_alive()  # waiting for the gate's lock, not showing the answer
    go_on.set()
    writer.join(10)
    reader.join(10)
    assert seen["r"].decision.by == ["a"] and events(store) == ["asked", "decided"]


def test_a_reader_that_may_not_write_does_not_show_an_unconfirmed_answer(store, gid, monkeypatch):
    die_at(monkeypatch, store.audit, "append", lambda event, *a, **k: event == "decided")
    with pytest.raises(Killed):
        store.decide(gid, "approve", actor="alice")
    monkeypatch.undo()
    reader = GateStore(store.root)

    def read_only(gid):  # a group-read member cannot open the lock file for writing
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(reader, "_lock", read_only)
    assert reader.get(gid).decision is None
    report = verify_store(reader)
    assert not report.ok and "is not audited yet" in report.problems[0]


def test_verify_finds_answers_and_entries_that_disagree(store, gid):
    store.decide(gid, "approve", actor="alice")
    assert verify_store(store).ok
    answers = store.answers_path(gid)
    answer, ack = answers.read_text().splitlines()
    forged = json.loads(answer)
    forged["id"] = "f" * 16
    answers.write_text(
        f"{answer}\n{ack}\n{json.dumps(forged)}\n{json.dumps({'ack': 'f' * 16, 'seq': 2})}\n"
    )
    report = verify_store(store)
    assert not report.ok
    assert f"answer {'f' * 16} names audit entry 2, which does not record it" in report.problems[0]
    answers.write_text("")  # the decision removed
    report = verify_store(store)
    assert "entry 2 records an answer to gate" in report.problems[0]
    assert "that no answers file holds" in report.problems[0]


def test_the_cli_warns_of_what_it_discarded(store, gid, monkeypatch, capsys):
    die_at(monkeypatch, store.audit, "append", lambda event, *a, **k: event == "decided")
    with pytest.raises(Killed):
        store.decide(gid, "approve", actor="alice")
    monkeypatch.undo()
    assert main(["--dir", str(store.root), "list"]) == 0
    err = capsys.readouterr().err
    assert "warning: gate" in err and "a decision (approve) by alice was never audited" in err
    assert main(["--dir", str(store.root), "audit", "--verify"]) == 0
    out = capsys.readouterr().out
    assert "note: entry 2: gate" in out and "audit log intact: 2 entries" in out
