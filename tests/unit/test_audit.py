"""The audit log's chain under crashes and concurrency, and the file lock behind it."""

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from snakemake_human_gate.audit import TAIL_BLOCK, AuditLog, line_hash
from snakemake_human_gate.storefs import StoreTree

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def log(tmp_path):
    (tmp_path / "locks").mkdir()
    return AuditLog(StoreTree(tmp_path), 0o600)


def fill(log, n):
    for i in range(n):
        log.append("asked", f"g{i}", "alice")


def lines(log):
    return log.path.read_bytes().splitlines(keepends=True)


def test_head_may_lag_but_must_name_an_intact_entry(log):
    fill(log, 3)
    first_two = lines(log)[:2]
    log.head.write_text(f"2 {line_hash(first_two[1])}\n")  # a crash lost the last update
    assert log.verify().ok and log.verify().entries == 3

    log.head.write_text(f"2 {line_hash(first_two[0])}\n")
    verdict = log.verify()
    assert not verdict.ok and "entry 2 was altered or the head file does not match" in (
        verdict.problem
    )


def test_a_missing_head_is_reported_and_the_next_append_restores_it(log):
    fill(log, 2)
    log.head.unlink()
    verdict = log.verify()
    assert not verdict.ok and "audit.head is missing or empty" in verdict.problem
    log.head.write_text("")  # renamed into place before its data reached the disk
    assert "missing or empty" in log.verify().problem
    fill(log, 1)
    assert log.verify().ok and log.verify().entries == 3


def test_a_garbled_head_is_named(log):
    fill(log, 1)
    log.head.write_text("not a head\n")
    verdict = log.verify()
    assert not verdict.ok and "is not 'COUNT SHA256'" in verdict.problem


def test_appends_chain_onto_the_log_not_onto_a_stale_head(log):
    fill(log, 3)
    log.head.write_text(f"1 {line_hash(lines(log)[0])}\n")
    entry = log.append("decided", "g0", "bob")
    assert entry["seq"] == 4 and entry["prev"] == line_hash(lines(log)[2])
    assert log.verify().ok and log.verify().entries == 4


def test_an_entry_after_a_torn_line_starts_a_line_of_its_own(log):
    fill(log, 2)
    with open(log.path, "ab") as f:
        f.write(b'{"seq":3,"ev')  # a crash in the middle of a write
    entry = log.append("decided", "g1", "bob")
    assert entry["seq"] == 3 and entry["prev"] == line_hash(lines(log)[1])
    assert [e["seq"] for e in log.entries()] == [1, 2, 3]  # nothing lost
    verdict = log.verify()
    assert not verdict.ok and verdict.problem == "line 3 is not valid JSON"


def test_entries_longer_than_a_read_block_chain(log):
    fill(log, 1)
    log.append("decided", "g0", "bob", comment="x" * (3 * TAIL_BLOCK))
    fill(log, 1)
    assert [e["seq"] for e in log.entries()] == [1, 2, 3]
    assert log.verify().ok


def test_processes_appending_at_once_make_one_chain(log):
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from snakemake_human_gate.audit import AuditLog
        from snakemake_human_gate.storefs import StoreTree
        log = AuditLog(StoreTree(Path({str(log.path.parent)!r})), 0o600)
        for i in range(60):
            log.append("voted", f"g{{i}}", sys.argv[1])
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", code, f"p{n}"], env=env) for n in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    verdict = log.verify()
    assert verdict.ok and verdict.entries == 240
    actors = [json.loads(line)["actor"] for line in lines(log)]
    assert sorted(set(actors)) == ["p0", "p1", "p2", "p3"] and len(actors) == 240


def test_file_lock_excludes_other_processes(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path;"
            "from snakemake_human_gate.storefs import StoreTree\n"
            f"with StoreTree(Path({str(tmp_path)!r})).locked('x.lock', mode=0o600):\n"
            "    print('held', flush=True); time.sleep(0.5)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert holder.stdout.readline() == "held\n"
    start = time.monotonic()
    with StoreTree(tmp_path).locked("x.lock", mode=0o600):
        waited = time.monotonic() - start
    assert 0.4 < waited < 5  # the holder keeps it 0.5 s after saying so
    holder.wait()


def test_file_lock_excludes_other_threads(tmp_path):
    tree, events = StoreTree(tmp_path), []

    def other():
        with tree.locked("x.lock", mode=0o600):
            events.append("other")

    with tree.locked("x.lock", mode=0o600):
        thread = threading.Thread(target=other)
        thread.start()
        time.sleep(0.2)
        events.append("main")
    thread.join(timeout=5)
    assert events == ["main", "other"]


def test_file_lock_file_gets_the_share_mode_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        with StoreTree(tmp_path).locked("x.lock", mode=0o660):
            pass
    finally:
        os.umask(old)
    assert (tmp_path / "x.lock").stat().st_mode & 0o777 == 0o660
