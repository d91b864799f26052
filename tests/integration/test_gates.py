"""Human gates in real Snakemake runs, decided through the real CLI."""

import json
import os
import shutil
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from snakemake_executor_hybrid.gates import EXIT_WAITING
from tests.conftest import copy_workflow, snakemake, start, wait_until
from tests.integration.gatehelp import (
    audit,
    finish,
    gate_cli,
    kill_hard,
    pending,
    wait_pending,
)


def gated(tmp_path, gate_options=None, **config):
    wd = copy_workflow("gated", tmp_path)
    (wd / "config.json").write_text(json.dumps({**config, "gate": gate_options or {}}))
    return wd, wd / ".snakemake" / "gates"


def hybrid(*args):
    return ("--executor", "hybrid", "--configfile", "config.json", *args)


def lines(path):
    return path.read_text().split()


def test_waiting_gate_holds_no_slot_while_independent_jobs_run(tmp_path):
    wd, store = gated(tmp_path, indep=3, seconds=1)
    proc = start(wd, *hybrid("--jobs", "1"))  # one slot: a gate holding it would block all
    (gate,) = wait_pending(store, 1, proc)
    indep = [wd / f"results/indep_{i}.txt" for i in range(3)]
    wait_until(
        lambda: all(p.exists() and len(lines(p)) == 2 for p in indep),
        120,
        "the independent jobs to finish while the gate waits",
        proc,
    )
    assert pending(store)[0]["id"] == gate["id"]  # still waiting
    decided = gate_cli(store, "approve", gate["id"], "--set", "lr=0.2", "--comment", "sane")
    assert decided.returncode == 0, decided.stderr
    out = finish(proc)
    assert proc.returncode == 0, out
    assert lines(wd / "results/after_review.txt") == ["trained", "lr=0.2", "by=root"]

    events = {e["event"]: e["ts"] for e in audit(store)}
    spans = [tuple(map(float, lines(path))) for path in indep]
    assert all(events["asked"] <= start and end <= events["decided"] for start, end in spans)
    assert json.loads((wd / "gates/review.json").read_text())["comment"] == "sane"


def test_rejection_fails_the_gate_job_with_who_when_and_why(tmp_path):
    wd, store = gated(tmp_path, indep=2, seconds=2)
    proc = start(wd, *hybrid("--jobs", "4", "--keep-going"))
    (gate,) = wait_pending(store, 1, proc)
    assert gate_cli(store, "reject", gate["id"], "--comment", "loss diverges").returncode == 0
    out = finish(proc)
    assert proc.returncode == 1
    assert f"gate {gate['id']}: rejected by root at " in out and ": loss diverges" in out
    assert all((wd / f"results/indep_{i}.txt").exists() for i in range(2))  # --keep-going
    assert not (wd / "gates/review.json").exists()

    # without --keep-going, a rerun fails at once: the decision stands, nothing is asked again
    again = snakemake(wd, *hybrid("--jobs", "4"), timeout=120)
    assert again.returncode == 1 and "rejected by root" in again.stderr
    assert [e["event"] for e in audit(store)].count("asked") == 1


def test_choice_branches_and_typed_field_reaches_params(tmp_path):
    wd, store = gated(tmp_path, indep=0)
    proc = start(wd, *hybrid("--jobs", "2"))
    (gate,) = wait_pending(store, 1, proc)
    gid = gate["id"]
    for args, message in [
        (
            ["decide", gid, "--choice", "ship"],
            "choice 'ship' is not one of approve, retune, reject",
        ),
        (["decide", gid, "--choice", "retune", "--set", "lr=fast"], "field 'lr': 'fast'"),
        (["decide", gid, "--choice", "retune", "--set", "lr=2"], "field 'lr': 2.0 is above"),
        (["decide", gid, "--choice", "retune", "--set", "depth=3"], "field 'depth' is not a field"),
    ]:
        bad = gate_cli(store, *args)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr
    assert pending(store)[0]["votes"] == 0  # nothing was written
    ok = gate_cli(store, "decide", gid, "--choice", "retune", "--set", "lr=0.05")
    assert ok.returncode == 0, ok.stderr
    assert finish(proc) and proc.returncode == 0
    assert lines(wd / "results/after_review.txt") == ["retuned", "lr=0.05"]
    assert not (wd / "results/trained.txt").exists()


def test_self_approval_and_non_approvers_are_refused_and_audited(tmp_path):
    wd, store = gated(tmp_path, {"allow_self_approval": False}, indep=0)
    proc = start(wd, *hybrid("--jobs", "2", "--hybrid-exit-when-waiting"))
    (gate,) = wait_pending(store, 1, proc)
    refused = gate_cli(store, "approve", gate["id"])
    assert refused.returncode == 4 and "does not allow self-approval" in refused.stderr
    out = finish(proc)  # only the gate is left: stops, saying who must decide
    assert proc.returncode == EXIT_WAITING, out
    assert "Every remaining job waits on a human (1 gate(s))" in out
    assert gate["id"] in out and "Launch the full training run?" in out

    wd2, store2 = gated(tmp_path / "two", {"approvers": ["alice"]}, indep=0)
    proc = start(wd2, *hybrid("--jobs", "2", "--hybrid-exit-when-waiting"))
    (gate2,) = wait_pending(store2, 1, proc)
    refused = gate_cli(store2, "approve", gate2["id"])
    assert refused.returncode == 4 and "root may not decide" in refused.stderr
    finish(proc)
    reasons = [e["reason"] for e in audit(store) + audit(store2) if e["event"] == "refused"]
    assert reasons == ["self-approval", "not an approver"]


def test_timeout_decides_by_timeout_with_field_defaults(tmp_path):
    wd, store = gated(tmp_path, {"timeout": "2s", "on_timeout": "approve"}, indep=0)
    run = snakemake(wd, *hybrid("--jobs", "2"), timeout=120)
    assert run.returncode == 0, run.stderr
    assert lines(wd / "results/after_review.txt") == ["trained", "lr=0.01", "by=timeout"]
    assert [e["event"] for e in audit(store)] == ["asked", "timeout"]
    assert pending(store, all_gates=True)[0]["status"] == "expired"

    # the Snakefile's definition changes afterwards: the decision stands, the run says so
    (wd / "config.json").write_text(json.dumps({"indep": 0, "gate": {"approvers": ["bob"]}}))
    again = snakemake(wd, *hybrid("--jobs", "2"), timeout=120)
    assert again.returncode == 0, again.stderr
    changed = "(changed: timeout, on_timeout, approvers)"
    assert f"decided under an earlier definition {changed}" in again.stderr
    assert "its decision stands. To ask again: snakemake-gate" in again.stderr


def test_100_concurrent_deciders_one_decision(tmp_path):
    from snakemake_human_gate import gate
    from snakemake_human_gate.store import GateStore

    store_dir = tmp_path / "store"
    artifact = tmp_path / "a.txt"
    artifact.write_text("x")
    record, _ = GateStore(store_dir).ask(
        rule="r",
        wildcards={},
        inputs=[artifact],
        output=tmp_path / "out.json",
        spec=gate("Race?"),
        requested_by="runner",
    )
    argv = [sys.executable, "-m", "snakemake_human_gate", "--dir", str(store_dir)]

    def decide(i):
        choice = "approve" if i % 2 else "reject"
        return subprocess.run(
            [*argv, choice, record.id, "--comment", f"#{i}"],
            capture_output=True,
            text=True,
            timeout=300,
        ).returncode

    with ThreadPoolExecutor(max_workers=100) as pool:
        codes = list(pool.map(decide, range(100)))
    assert sorted(codes) == [0] + [3] * 99
    entries = audit(store_dir)
    assert [e["event"] for e in entries].count("decided") == 1
    assert [e.get("reason") for e in entries].count("already decided") == 99
    verify = subprocess.run([*argv, "audit", "--verify"], capture_output=True, text=True)
    assert verify.returncode == 0 and "intact: 101 entries" in verify.stdout
    winner = next(e for e in entries if e["event"] == "decided")
    final = GateStore(store_dir).get(record.id).decision
    assert final.comment == winner["comment"]


def test_kill_9_then_resume_without_asking_again(tmp_path):
    wd = copy_workflow("many_gates", tmp_path)
    store = wd / ".snakemake" / "gates"
    proc = start(wd, "--executor", "hybrid", "--jobs", "4")
    gates = wait_pending(store, 20, proc)
    kill_hard(proc)
    decided = sorted(gates, key=lambda g: g["id"])[:10]
    for g in decided:
        assert gate_cli(store, "approve", g["id"]).returncode == 0
    assert snakemake(wd, "--unlock").returncode == 0
    run = snakemake(
        wd, "--executor", "hybrid", "--jobs", "4", "--hybrid-exit-when-waiting", timeout=300
    )
    assert run.returncode == EXIT_WAITING, run.stderr
    assert "Every remaining job waits on a human (10 gate(s))" in run.stderr
    waiting = {g["wildcards"]["i"] for g in gates} - {g["wildcards"]["i"] for g in decided}
    assert all(f" [i={i}]: " in run.stderr for i in waiting)  # which deploy is which
    done = {g["wildcards"]["i"] for g in decided}
    for i in range(20):
        assert (wd / f"results/after_{i}.txt").exists() == (str(i) in done)
    assert len(pending(store)) == 10
    assert [e["event"] for e in audit(store)].count("asked") == 20  # never re-asked


def test_gate_await_makes_gates_work_under_other_executors(tmp_path):
    wd, store = gated(tmp_path, indep=1)
    proc = start(wd, "--cores", "2", "--configfile", "config.json")  # Snakemake's local executor
    (gate,) = wait_pending(store, 1, proc)
    assert gate_cli(store, "approve", gate["id"], "--set", "lr=0.3").returncode == 0
    out = finish(proc)
    assert proc.returncode == 0, out
    assert lines(wd / "results/after_review.txt") == ["trained", "lr=0.3", "by=root"]


def test_foreign_files_in_the_store_are_reported_and_harmless(tmp_path):
    wd, store = gated(tmp_path, indep=0)
    proc = start(wd, *hybrid("--jobs", "2"))
    (gate,) = wait_pending(store, 1, proc)
    (store / "gates" / "broken.json").write_text("{")
    (store / "gates" / "README").write_text("not a gate")
    listed = gate_cli(store, "list")
    assert listed.returncode == 0 and gate["id"] in listed.stdout
    assert "broken.json: unreadable gate record" in listed.stderr
    assert "README: not a gate record" in listed.stderr
    assert gate_cli(store, "approve", gate["id"], "--set", "lr=0.1").returncode == 0
    finish(proc)
    assert proc.returncode == 0


def test_tampered_audit_log_is_detected(tmp_path):
    wd, store = gated(tmp_path, {"timeout": "1s", "on_timeout": "approve"}, indep=0)
    assert snakemake(wd, *hybrid("--jobs", "2"), timeout=120).returncode == 0
    assert gate_cli(store, "audit", "--verify").returncode == 0
    log = store / "audit.jsonl"
    log.write_text(log.read_text().replace('"asked"', '"askex"', 1))
    verdict = gate_cli(store, "audit", "--verify")
    assert verdict.returncode == 1 and "entry 1 (line 1) was altered" in verdict.stdout


GROUP = "hybridgatetest"
USERS = ("alice", "bob", "carol")


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """Three real OS users in one group (root only), and a PYTHONPATH they can read
    holding this package, for the system Python (the test venv's interpreter may live
    where they cannot go)."""
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("creating test users needs root and useradd")
    if not os.access("/usr/bin/python3", os.X_OK):
        pytest.skip("the other users need /usr/bin/python3")
    subprocess.run(["groupadd", "-f", GROUP], check=True)
    for user in USERS:
        if subprocess.run(["id", user], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "-M", "-G", GROUP, user], check=True)
        else:
            subprocess.run(["usermod", "-a", "-G", GROUP, user], check=True)
    import snakemake_human_gate

    shared = Path("/tmp") / f"hybrid-gate-pkgs-{uuid.uuid4().hex[:8]}"
    source = Path(snakemake_human_gate.__file__).parent
    shutil.copytree(source, shared / source.name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["chmod", "-R", "a+rX", str(shared)], check=True)
    yield shared
    shutil.rmtree(shared, ignore_errors=True)


def test_quorum_of_real_users_on_a_group_store(tmp_path, team):
    def as_user(user, *args):
        return gate_cli(store, *args, user=user, pythonpath=team)

    store = Path("/tmp") / f"hybrid-gate-test-{uuid.uuid4().hex[:8]}"
    store.mkdir(mode=0o2770)
    shutil.chown(store, group=GROUP)
    os.chmod(store, 0o2770)
    try:
        wd, _ = gated(tmp_path, {"approvers": list(USERS), "quorum": 2}, indep=0)
        proc = start(
            wd,
            *hybrid(
                "--jobs", "2", "--hybrid-gate-dir", str(store), "--hybrid-gate-share", "group-write"
            ),
        )
        (gate,) = wait_pending(store, 1, proc)
        first = as_user("alice", "approve", gate["id"], "--set", "lr=0.4")
        assert first.returncode == 0 and "1 of 2" in first.stdout, first.stderr
        assert as_user("alice", "approve", gate["id"], "--set", "lr=0.4").returncode == 0
        assert pending(store)[0]["status"] == "pending"  # the same person twice is one vote
        second = as_user("bob", "approve", gate["id"], "--set", "lr=0.4")
        assert second.returncode == 0, second.stderr
        out = finish(proc)
        assert proc.returncode == 0, out
        assert lines(wd / "results/after_review.txt") == ["trained", "lr=0.4", "by=alice,bob"]
        late = as_user("carol", "approve", gate["id"])
        assert late.returncode == 3
        assert [(e["event"], e["actor"]) for e in audit(store)][1:] == [
            ("voted", "alice"),
            ("voted", "alice"),
            ("decided", "bob"),
            ("refused", "carol"),
        ]
    finally:
        shutil.rmtree(store, ignore_errors=True)


def test_bad_gate_setups_stop_the_run_at_start(tmp_path):
    wd, _ = gated(tmp_path, indep=0)
    run = snakemake(wd, *hybrid("--jobs", "2", "--hybrid-gate-share", "world"), timeout=60)
    assert run.returncode == 1
    assert "--hybrid-gate-share: unknown share mode 'world'" in run.stderr
    grouped = snakemake(wd, *hybrid("--jobs", "2", "--groups", "review_pilot=g", "review=g"))
    assert grouped.returncode == 1
    assert "Rule 'review' is a gate but belongs to group 'g'" in grouped.stderr
    (wd / "config.json").write_text(json.dumps({"gate": {"quorum": 0}}))
    bad = snakemake(wd, *hybrid("--jobs", "2"), timeout=60)
    assert bad.returncode == 1 and "quorum must be at least 1" in bad.stderr


def test_stopping_for_gates_exits_75_after_snakemake_has_ended_its_run(tmp_path):
    """The status is set after Snakemake's own end (its shutdown, the lock released, the
    interpreter's exit handlers run), not by an os._exit that skips them."""
    wd, store = gated(tmp_path, indep=1, seconds=0)
    wrapper = (
        "import atexit, sys; atexit.register(lambda: print('exit handlers ran', flush=True));"
        "from snakemake.cli import main; sys.argv[0] = 'snakemake'; main()"
    )
    run = subprocess.run(
        [sys.executable, "-c", wrapper, *hybrid("--jobs", "2", "--hybrid-exit-when-waiting")],
        cwd=wd,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == EXIT_WAITING, run.stderr
    assert "exit handlers ran" in run.stdout
    assert "Exit status 75: gates wait" in run.stderr
    assert not list((wd / ".snakemake" / "locks").glob("*")), "Snakemake's lock was left"
    assert (wd / "results" / "indep_0.txt").exists()
    (gate,) = pending(store)
    assert gate_cli(store, "approve", gate["id"]).returncode == 0
    again = snakemake(wd, *hybrid("--jobs", "2", "--hybrid-exit-when-waiting"), timeout=180)
    assert again.returncode == 0, again.stderr  # not locked; nothing waits any more


def test_stopping_for_gates_after_a_failed_job_says_status_1(tmp_path):
    """With --keep-going a job that failed makes the status 1, not 75: the summary says
    which."""
    wd, _ = gated(tmp_path, indep=1, seconds="0; exit 3")  # the independent job fails
    run = snakemake(
        wd, *hybrid("--jobs", "2", "--keep-going", "--hybrid-exit-when-waiting"), timeout=180
    )
    assert run.returncode == 1, run.stderr
    assert "Every remaining job waits on a human (1 gate(s)); stopping." in run.stderr
    assert "Exit status 75" not in run.stderr
    assert "Exit status 1: a job failed" in run.stderr


def test_two_working_directories_sharing_a_store_each_get_the_decision(tmp_path):
    shared = tmp_path / "shared-gates"
    one, _ = gated(tmp_path / "one", indep=0)
    two, _ = gated(tmp_path / "two", indep=0)
    waiting = ("--jobs", "2", "--hybrid-gate-dir", str(shared), "--hybrid-exit-when-waiting")
    proc = start(one, *hybrid(*waiting[:-1]))
    (gate,) = wait_pending(shared, 1, proc)
    second = snakemake(two, *hybrid(*waiting), timeout=180)
    assert second.returncode == EXIT_WAITING, second.stderr
    assert gate["id"] in second.stderr  # the same gate: asked once
    shown = gate_cli(shared, "show", gate["id"])
    for wd in (one, two):
        assert f"output    {wd / 'gates' / 'review.json'}" in shown.stdout
    assert gate_cli(shared, "approve", gate["id"], "--set", "lr=0.3").returncode == 0
    assert finish(proc) and proc.returncode == 0
    again = snakemake(two, *hybrid(*waiting), timeout=180)
    assert again.returncode == 0, again.stderr
    for wd in (one, two):
        assert lines(wd / "results/after_review.txt") == ["trained", "lr=0.3", "by=root"]
    assert [e["event"] for e in audit(shared)] == ["asked", "decided"]
