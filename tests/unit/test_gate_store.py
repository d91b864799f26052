import json
import os
import stat
import time

import pytest

from snakemake_human_gate import decision, gate
from snakemake_human_gate.errors import Conflict, InvalidInput, NotPermitted, UnknownGate
from snakemake_human_gate.outcome import settle
from snakemake_human_gate.store import GateStore


def ask(store, artifact, spec=None, wildcards=None, requested_by="runner"):
    return store.ask(
        rule="review",
        wildcards=wildcards or {"run": "1"},
        inputs=[artifact],
        output=artifact.parent / "out" / "review.json",
        spec=spec or gate("Ship?", fields={"lr": float}),
        requested_by=requested_by,
    )


def test_same_rule_wildcards_and_inputs_never_ask_twice(store, artifact):
    first, new = ask(store, artifact)
    again, new_again = ask(store, artifact)
    assert new and not new_again and first.id == again.id
    assert [e["event"] for e in store.audit.entries()] == ["asked"]


def test_changed_inputs_or_wildcards_ask_anew(store, artifact):
    first, _ = ask(store, artifact)
    other, _ = ask(store, artifact, wildcards={"run": "2"})
    artifact.write_text('{"loss": 0.2}')
    changed, new = ask(store, artifact)
    assert new and len({first.id, other.id, changed.id}) == 3


def test_decision_is_write_once_and_attributed(store, artifact):
    record, _ = ask(store, artifact)
    decided = store.decide(record.id, "approve", {"lr": "0.01"}, comment="ok", actor="alice")
    assert decided.status == "decided"
    assert decided.decision.by == ["alice"] and decided.decision.fields == {"lr": 0.01}
    with pytest.raises(Conflict, match="already decided: approve by alice"):
        store.decide(record.id, "reject", actor="bob")
    assert store.get(record.id).decision.choice == "approve"
    events = [(e["event"], e["actor"]) for e in store.audit.entries()]
    assert events == [("asked", "runner"), ("decided", "alice"), ("refused", "bob")]


def test_invalid_values_write_nothing_and_are_audited(store, artifact):
    record, _ = ask(store, artifact)
    before = store.path(record.id).read_bytes()
    with pytest.raises(InvalidInput, match="field 'lr'"):
        store.decide(record.id, "approve", {"lr": "x"}, actor="alice")
    assert store.path(record.id).read_bytes() == before
    assert store.audit.entries().__next__()["event"] == "asked"
    assert [e["reason"] for e in store.audit.entries() if e["event"] == "refused"] == ["invalid"]


def test_approvers_and_self_approval(store, artifact):
    spec = gate("Ship?", approvers=["alice", "runner"], allow_self_approval=False)
    record, _ = ask(store, artifact, spec=spec)
    with pytest.raises(NotPermitted, match="eve may not decide"):
        store.decide(record.id, "approve", actor="eve")
    with pytest.raises(NotPermitted, match="does not allow self-approval"):
        store.decide(record.id, "approve", actor="runner")
    assert store.decide(record.id, "approve", actor="alice").decision.by == ["alice"]
    reasons = [e["reason"] for e in store.audit.entries() if e["event"] == "refused"]
    assert reasons == ["not an approver", "self-approval"]


def test_quorum_needs_distinct_agreeing_approvers(store, artifact):
    spec = gate("Ship?", approvers=["alice", "bob", "carol"], quorum=2)
    record, _ = ask(store, artifact, spec=spec)
    assert store.decide(record.id, "approve", actor="alice").decision is None
    assert store.decide(record.id, "approve", actor="alice").decision is None  # same person
    assert store.decide(record.id, "reject", actor="bob").decision is None  # disagrees
    decided = store.decide(record.id, "approve", actor="carol")
    assert decided.decision.choice == "approve" and decided.decision.by == ["alice", "carol"]


def test_timeout_applies_on_timeout_by_timeout(store, artifact):
    spec = gate("Ship?", timeout=0.2, on_timeout="reject")
    record, _ = ask(store, artifact, spec=spec)
    assert store.expire_due() == []
    time.sleep(0.3)
    (expired,) = store.expire_due()
    assert expired.status == "expired" and expired.decision.by == ["timeout"]
    with pytest.raises(Conflict):
        store.decide(record.id, "approve", actor="alice")
    assert [e["event"] for e in store.audit.entries()][-2:] == ["timeout", "refused"]


def test_reset_asks_again(store, artifact):
    record, _ = ask(store, artifact)
    store.decide(record.id, "approve", {"lr": 1}, actor="alice")
    store.archive(record.id, "reopened", actor="alice")
    with pytest.raises(UnknownGate):
        store.get(record.id)
    again, new = ask(store, artifact)
    assert new and again.id == record.id and again.decision is None
    archived = sorted((store.root / "archive").iterdir())
    assert [p.suffix for p in archived] == [".answers", ".json"]
    answer = json.loads(archived[0].read_text().splitlines()[0])
    assert answer["decision"]["by"] == ["alice"]


def test_what_was_asked_is_never_rewritten_and_each_answer_is_one_line(store, artifact):
    spec = gate("Ship?", approvers=["alice", "bob"], quorum=2)
    record, _ = ask(store, artifact, spec=spec)
    asked = store.path(record.id).read_bytes()
    versions = {store.version(record.id)}
    store.decide(record.id, "approve", actor="alice", comment="fine")
    versions.add(store.version(record.id))
    store.decide(record.id, "approve", actor="bob")
    versions.add(store.version(record.id))
    assert store.path(record.id).read_bytes() == asked and len(versions) == 3
    lines = [json.loads(line) for line in store.answers_path(record.id).read_text().splitlines()]
    alice, alice_ack, bob, bob_ack = lines  # each answer, then the audit entry confirming it
    assert [(a["vote"]["by"], a["decision"] is not None) for a in (alice, bob)] == [
        ("alice", False),
        ("bob", True),
    ]
    entries = {e["seq"]: e for e in store.audit.entries()}
    for answer, ack in ((alice, alice_ack), (bob, bob_ack)):
        assert ack == {"ack": answer["id"], "seq": ack["seq"]}
        assert entries[ack["seq"]]["answer"] == answer["id"]
    assert store.get(record.id).decision.comment == "fine"


def test_a_line_torn_by_a_crash_is_ignored_and_the_next_answer_starts_a_line(store, artifact):
    spec = gate("Ship?", approvers=["alice", "bob"], quorum=2)
    record, _ = ask(store, artifact, spec=spec)
    store.decide(record.id, "approve", actor="alice")
    answers = store.answers_path(record.id)
    with open(answers, "a") as f:
        f.write('{"vote": {"by": "mallory", "cho')  # a crash in the middle of a write
    assert [v.by for v in store.get(record.id).votes] == ["alice"]
    assert store.decide(record.id, "approve", actor="bob").decision.by == ["alice", "bob"]
    assert store.get(record.id).decision.by == ["alice", "bob"]
    torn, bob, ack = answers.read_text().splitlines()[2:]  # each on a line of its own
    assert torn.endswith('"cho') and json.loads(bob)["vote"]["by"] == "bob"
    assert json.loads(ack)["ack"] == json.loads(bob)["id"]


def test_a_record_from_before_answers_files_is_read_and_answered(store, artifact):
    spec = gate("Ship?", approvers=["alice", "bob"], quorum=2)
    record, _ = ask(store, artifact, spec=spec)
    store.decide(record.id, "approve", actor="alice")
    old = store.get(record.id).to_json()  # votes inside the record, as stores kept them
    store.path(record.id).write_text(json.dumps(old))
    store.answers_path(record.id).unlink()
    assert [v.by for v in store.get(record.id).votes] == ["alice"]
    assert store.decide(record.id, "approve", actor="bob").decision.by == ["alice", "bob"]
    assert stat.S_IMODE(os.stat(store.answers_path(record.id)).st_mode) == 0o600
    with pytest.raises(Conflict):
        store.decide(record.id, "reject", actor="alice")


def test_answers_left_by_an_interrupted_reset_are_not_inherited(store, artifact):
    record, _ = ask(store, artifact)
    store.decide(record.id, "approve", {"lr": 1}, actor="alice")
    store.path(record.id).rename(store.root / "archive" / "gone.json")  # then the crash
    records, problems = store.scan()
    assert records == [] and [p.reason for p in problems] == [
        "answers of no gate (left by a reset)"
    ]
    again, new = ask(store, artifact)
    assert new and again.decision is None and store.get(record.id).decision is None


def test_unknown_and_hostile_ids(store):
    with pytest.raises(UnknownGate):
        store.decide("review-000000000000", "approve", actor="alice")
    for bad in ["../etc/passwd", "a/b", ".hidden", "x" * 300, "", "review-1\n", "review\n-1"]:
        with pytest.raises(InvalidInput, match="invalid gate id"):
            store.decide(bad, "approve", actor="alice")


def test_text_that_is_not_unicode_is_refused_before_anything_is_written(store, artifact):
    record, _ = ask(store, artifact, gate("Ship?", fields={"note": str}))
    answers = store.answers_path(record.id)
    for values, comment in (
        ({"note": "x\udc00"}, ""),
        ({"\ud800": "x", "note": "n"}, ""),
        ({"note": "n"}, "fine \udfff"),
    ):
        with pytest.raises(InvalidInput, match="not valid Unicode"):
            store.decide(record.id, "approve", values, comment=comment, actor="alice")
    assert answers.read_bytes() == b""
    refused = [e for e in store.audit.entries() if e["event"] == "refused"]
    assert len(refused) == 3 and all("not valid Unicode" in e["detail"] for e in refused)
    assert (store.root / "audit.jsonl").read_text(encoding="utf-8")  # UTF-8 throughout
    with pytest.raises(InvalidInput, match="not valid Unicode"):
        store.ask(
            rule="review",
            wildcards={"run": "\udc80"},
            inputs=[artifact],
            output=artifact.parent / "out.json",
            spec=gate("Ship?"),
        )


def test_malformed_and_foreign_files_are_reported_not_fatal(store, artifact):
    record, _ = ask(store, artifact)
    (store.root / "gates" / "junk.json").write_text("{not json")
    (store.root / "gates" / "notes.txt").write_text("hello")
    (store.root / "gates" / "other-1.json").write_text(json.dumps({"schema": 99}))
    records, problems = store.scan()
    assert [r.id for r in records] == [record.id]
    assert sorted(p.path.name for p in problems) == ["junk.json", "notes.txt", "other-1.json"]
    assert store.decide(record.id, "approve", {"lr": 1}, actor="a").status == "decided"


def test_files_are_owner_only_by_default(store, artifact):
    record, _ = ask(store, artifact)
    store.decide(record.id, "approve", {"lr": 1}, actor="alice")
    paths = (store.path(record.id), store.answers_path(record.id), store.audit.path, store.root)
    for path in paths:
        assert stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0, path


def test_group_read_share_mode(tmp_path, artifact):
    store = GateStore(tmp_path / "shared", share="group-read")
    record, _ = ask(store, artifact)
    assert stat.S_IMODE(os.stat(store.path(record.id)).st_mode) == 0o640
    assert GateStore(tmp_path / "shared").share == "group-read"  # remembered


def test_settle_writes_the_decision_or_explains_the_failure(store, artifact):
    record, _ = ask(store, artifact)
    approved = store.decide(record.id, "approve", {"lr": 0.1}, comment="fine", actor="alice")
    assert settle(approved) is None
    read = decision(approved.output)
    assert (read.choice, read.fields, read.by, read.comment) == (
        "approve",
        {"lr": 0.1},
        ["alice"],
        "fine",
    )
    other, _ = ask(store, artifact, wildcards={"run": "9"})
    rejected = store.decide(other.id, "reject", comment="loss diverges", actor="bob")
    message = settle(rejected)
    assert message.startswith(f"gate {other.id}: rejected by bob at ")
    assert message.endswith(": loss diverges")


def test_audit_chain_detects_alteration_deletion_and_truncation(store, artifact):
    record, _ = ask(store, artifact)
    for actor in ("eve", "mallory"):
        with pytest.raises(InvalidInput):
            store.decide(record.id, "approve", {"lr": "x"}, actor=actor)
    store.decide(record.id, "approve", {"lr": 1}, actor="alice")
    assert store.audit.verify().ok and store.audit.verify().entries == 4
    original = store.audit.path.read_bytes()
    lines = original.splitlines(keepends=True)

    store.audit.path.write_bytes(lines[0] + lines[1].replace(b"eve", b"bob") + b"".join(lines[2:]))
    verdict = store.audit.verify()
    assert not verdict.ok and "entry 2 (line 2) was altered" in verdict.problem

    store.audit.path.write_bytes(lines[0] + b"".join(lines[2:]))
    assert "entry 2 is missing" in store.audit.verify().problem

    store.audit.path.write_bytes(b"".join(lines[:3]))
    assert "entries 4..4 are missing" in store.audit.verify().problem

    store.audit.path.write_bytes(original)
    assert store.audit.verify().ok


def test_cli_resolves_rule_names_and_prefixes(store, artifact, capsys):
    from snakemake_human_gate.cli import main

    record, _ = ask(store, artifact)
    other, _ = ask(store, artifact, wildcards={"run": "2"})
    root = str(store.root)
    assert main(["--dir", root, "show", record.id[:-4] + "xxxx"]) == 5  # no such prefix
    assert main(["--dir", root, "approve", "review", "--set", "lr=1"]) == 2  # two pending
    assert "matches several gates" in capsys.readouterr().err
    assert main(["--dir", root, "approve", record.id, "--set", "lr=1"]) == 0
    assert main(["--dir", root, "reject", "review"]) == 0  # now the only pending one
    assert store.get(other.id).decision.choice == "reject"


def test_cli_list_leaves_the_cycle_collector_as_it_found_it(store, artifact, capsys):
    import gc

    from snakemake_human_gate.cli import main

    ask(store, artifact)
    assert gc.isenabled()
    assert main(["--dir", str(store.root), "list"]) == 0
    assert gc.isenabled()
    gc.disable()
    try:
        assert main(["--dir", str(store.root), "list", "--json"]) == 0
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert "review" in capsys.readouterr().out
