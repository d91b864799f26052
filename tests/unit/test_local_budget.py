import subprocess
import threading
import time
from pathlib import Path

import pytest

from snakemake_executor_hybrid.backends.local import LEFTOVER_GRACE_SECONDS, CoreBudget, JobProcess
from snakemake_executor_hybrid.processes import descendants, terminate_tree


def acquires(budget, cores, timeout=0.5):
    """Whether ``cores`` can be held within ``timeout`` seconds (from another thread)."""
    got = threading.Event()

    def take():
        with budget.hold(cores):
            got.set()

    threading.Thread(target=take, daemon=True).start()
    return got.wait(timeout)


def test_budget_rejects_zero():
    with pytest.raises(ValueError, match="at least 1"):
        CoreBudget(0)


def test_oversized_request_takes_the_whole_budget():
    budget = CoreBudget(2)
    with budget.hold(8) as held:
        assert held == 2
        assert not acquires(budget, 1)  # nothing left while it is held
    assert acquires(budget, 2)


def test_concurrent_holders_never_exceed_budget():
    budget = CoreBudget(3)
    in_use = []
    peak = [0]
    lock = threading.Lock()

    def work(cores):
        with budget.hold(cores) as held:
            with lock:
                in_use.append(held)
                peak[0] = max(peak[0], sum(in_use))
            time.sleep(0.02)
            with lock:
                in_use.remove(held)

    threads = [threading.Thread(target=work, args=(c,)) for c in [1, 2, 3, 1, 2, 1, 1, 2] * 3]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert peak[0] <= 3
    assert peak[0] >= 2  # jobs did run side by side
    assert acquires(budget, 3)  # everything was given back


def test_budget_released_on_exception():
    budget = CoreBudget(1)
    with pytest.raises(RuntimeError), budget.hold(1):
        raise RuntimeError("job failed")
    assert acquires(budget, 1)


def _running(pid):
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.05)
    return predicate()


def test_terminate_tree_reaches_grandchildren():
    shell = subprocess.Popen(["/bin/sh", "-c", "sleep 60 & sleep 60; wait"])
    try:
        assert _wait(lambda: len(descendants(shell.pid)) == 2)
        kids = descendants(shell.pid)
        terminate_tree(shell.pid)
        shell.wait(5)  # ends at once (its exit status races with its children's deaths)
        assert _wait(lambda: not any(_running(k) for k in kids))
    finally:
        shell.kill()


def test_a_job_process_leaves_nothing_behind_that_ignores_sigterm(tmp_path):
    # what a Snakemake deadlocked in its SIGTERM handler looks like from outside: the
    # job's shell is gone, something it started stays and ignores SIGTERM
    pidfile, ready = tmp_path / "leftover", tmp_path / "ready"
    process = JobProcess(
        f"(trap '' TERM; touch {ready}; exec sleep 60) & echo $! > {pidfile}; "
        f"while [ ! -e {ready} ]; do sleep 0.05; done"
    )
    began = time.monotonic()
    assert process.wait() == 0
    assert LEFTOVER_GRACE_SECONDS <= time.monotonic() - began < LEFTOVER_GRACE_SECONDS + 2
    leftover = Path(f"/proc/{pidfile.read_text().strip()}")
    deadline = time.monotonic() + 2
    while leftover.exists() and time.monotonic() < deadline:  # killed: until reaped
        time.sleep(0.05)
    assert not leftover.exists()
