"""Adaptive execution for real: the journal, learned requests, memory kills and retries,
jobs that can never start, failover (SLURM with memory enforced by scripts/slurm/up)."""

import json
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import copy_workflow, set_up, snakemake, squeue_ids

pytestmark = pytest.mark.integration

HYBRID = ["--executor", "hybrid", "--jobs", "4", "--hybrid-slurm-status-interval", "1"]


def enforcing() -> bool:
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True)
    return re.search(r"JobAcctGatherParams\s*=\s*OverMemoryKill", config.stdout) is not None


@pytest.fixture
def memory_enforced(slurm):
    """The project's SLURM with memory enforced (scripts/slurm/up configures it so)."""
    if not enforcing():
        set_up("slurm/up", until=enforcing)


@pytest.fixture
def wd(tmp_path):
    return copy_workflow("adaptive", tmp_path)


def snakefile(tmp_path: Path, text: str) -> Path:
    """A workflow directory holding a Snakefile that uses learned()."""
    wd = tmp_path / "wf"
    wd.mkdir()
    (wd / "Snakefile").write_text("from snakemake_executor_hybrid import learned\n" + text)
    return wd


def rows(wd: Path, history: str = ".snakemake/hybrid/history.sqlite") -> list[dict]:
    with sqlite3.connect(wd / history) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM jobs ORDER BY id")]


def run_id(output: str) -> str:
    return re.search(r"SLURM run ID: (\S+)", output).group(1)


@pytest.mark.slurm
def test_a_job_killed_for_memory_is_retried_with_more_and_succeeds(wd, memory_enforced):
    run = snakemake(wd, *HYBRID, "--retries", "1", "grown/450.txt")
    assert run.returncode == 0, run.stderr
    first, second = rows(wd)
    assert (first["attempt"], first["state"], first["req_mem_mb"]) == (1, "out_of_memory", 300)
    assert first["reason"].startswith("killed for memory by SLURM: a step used")
    assert first["used_mem_mb"] > 300 and first["external_id"]
    asked = second["req_mem_mb"]
    assert (second["attempt"], second["state"]) == (2, "succeeded") and asked >= 600
    assert f"mem_mb={asked} after attempt 1 was killed for memory (asked 300, used" in run.stderr
    assert "a step used" in run.stderr  # the first attempt's error names the kill
    # the job's own Snakemake (inside SLURM) ran with the request the main one made
    assert (wd / "grown/450.txt").read_text().strip() == str(asked)
    assert second["used_mem_mb"] < asked and second["used_wall_s"] >= 1


@pytest.mark.slurm
def test_jobs_that_can_never_start_fail_at_once_naming_request_and_limit(wd, memory_enforced):
    start = time.monotonic()
    run = snakemake(wd, *HYBRID, "--keep-going", "never/cpus.txt", "never/memory.txt")
    took = time.monotonic() - start
    assert run.returncode == 1
    assert took < 60, f"took {took:.0f} s"
    assert re.search(
        r"SLURM job \d+ \(rule cpus\) can never start on partition 'main': it asks for 3 "
        r"CPUs, and its nodes have at most 2 \(pending reason PartitionConfig\)\. Lower the "
        r"request, or give the rule a failover chain, e.g\. executor='slurm/local'\.",
        run.stderr,
    ), run.stderr
    assert (
        "sbatch refused the job of rule memory on partition 'main': it asks for 10000000 MB "
        "of memory, and its nodes have at most"
    ) in run.stderr
    assert squeue_ids(run_id(run.stdout + run.stderr)) == []  # the pending one was cancelled
    states = {r["rule"]: (r["backend"], r["state"]) for r in rows(wd)}
    assert states == {"cpus": ("slurm", "failed"), "memory": ("slurm", "failed")}


@pytest.mark.slurm
def test_a_chain_fails_over_to_local_when_slurm_can_never_run_the_job(wd, memory_enforced):
    run = snakemake(
        wd, "never/cpus.txt", "never/memory.txt", *HYBRID, "--config", "executor=slurm/local"
    )
    assert run.returncode == 0, run.stderr
    for rule in ("cpus", "memory"):
        assert (wd / f"never/{rule}.txt").read_text().strip() == "none"  # not in a SLURM job
        assert f"({rule}) fails over from slurm to local: " in run.stderr
    assert "-> slurm (then local) [resource 'executor' of rule 'cpus']" in run.stderr
    journal = [(r["rule"], r["backend"], r["state"], r["attempt"]) for r in rows(wd)]
    assert sorted(journal) == [
        ("cpus", "local", "succeeded", 1),
        ("cpus", "slurm", "failed_over", 1),
        ("memory", "local", "succeeded", 1),
        ("memory", "slurm", "failed_over", 1),
    ]
    reasons = {r["rule"]: r["reason"] for r in rows(wd) if r["backend"] == "slurm"}
    assert "it asks for 3 CPUs, and its nodes have at most 2" in reasons["cpus"]
    assert reasons["memory"].startswith("sbatch refused the job of rule memory")
    assert squeue_ids(run_id(run.stdout + run.stderr)) == []


LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.mark.slurm
def test_a_journal_locked_by_another_process_does_not_stop_the_run(wd, memory_enforced):
    history = wd / "history.sqlite"
    done = snakemake(wd, *HYBRID, "--hybrid-history", str(history), "grown/10.txt")
    assert done.returncode == 0, done.stderr
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(history)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout.readline().strip() == "locked"
        start = time.monotonic()
        run = snakemake(wd, *HYBRID, "--hybrid-history", str(history), "grown/20.txt")
        took = time.monotonic() - start
    finally:
        locker.stdin.close()
        locker.wait(10)
    assert run.returncode == 0, run.stderr
    assert took < 60
    assert run.stderr.count("is locked by another process") == 1
    assert "1 record(s) of this run were not written to the run journal" in run.stderr
    assert (wd / "grown/20.txt").exists()
    assert [r["wildcards"] for r in rows(wd, "history.sqlite")] == [json.dumps({"mb": "10"})]


def test_local_jobs_are_journalled_with_what_they_used(wd):
    run = snakemake(wd, "grown/60.txt", "grown/120.txt", *HYBRID, "--config", "executor=local")
    assert run.returncode == 0, run.stderr
    used = {json.loads(r["wildcards"])["mb"]: r for r in rows(wd)}
    for mb in (60, 120):
        row = used[str(mb)]
        assert row["backend"] == "local" and row["state"] == "succeeded"
        assert mb < row["used_mem_mb"] < mb + 100  # the command's python3, not Snakemake
        assert row["used_wall_s"] >= 1 and row["req_mem_mb"] == 300
    history = subprocess.run(
        [Path(sys.executable).parent / "snakemake-hybrid", "--json", "history"],
        cwd=wd,
        capture_output=True,
        text=True,
        check=True,
    )
    (grow,) = json.loads(history.stdout)
    assert (grow["rule"], grow["runs"], grow["failures"]) == ("grow", 2, 0)


def test_a_podman_jobs_memory_is_the_containers_own(tmp_path, podman):
    # the container's processes run under conmon, not under the job: counted all the same
    grow = "import time; b = bytearray(150 << 20); b[::4096] = b'x' * len(b[::4096]); time.sleep(2)"
    wd = snakefile(
        tmp_path,
        'rule boxed:\n    output: "boxed.txt"\n'
        f'    container: "{podman}"\n'
        "    resources: mem_mb=500\n"
        f'    shell: "python3 -c \\"{grow}\\" && touch {{output}}"\n',
    )
    run = snakemake(wd, *HYBRID, "--hybrid-container-runtime", "podman")
    assert run.returncode == 0, run.stderr
    (row,) = rows(wd)
    assert row["backend"] == "local" and row["state"] == "succeeded"
    assert row["used_mem_mb"] >= 150


def test_a_group_jobs_snakemake_gets_the_learned_values_not_its_own(tmp_path):
    # the group runs in a Snakemake of its own, which must not evaluate learned() again:
    # it is given the values the main one made (for two jobs of one rule, the larger)
    wd = snakefile(
        tmp_path,
        'rule all:\n    input: "g/1.txt", "g/2.txt"\n'
        'rule g:\n    output: "g/{n}.txt"\n    group: "both"\n'
        "    resources: mem_mb=learned(default=lambda wildcards: 100 * int(wildcards.n))\n"
        '    shell: "echo {resources.mem_mb} > {output}"\n',
    )
    run = snakemake(wd, *HYBRID, "--group-components", "both=2")  # one group job of two
    assert run.returncode == 0, run.stderr
    assert "mem_mb=100 default (0 of 5 runs needed to learn)" in run.stderr
    assert "mem_mb=200 default (0 of 5 runs needed to learn)" in run.stderr
    assert [(wd / f"g/{n}.txt").read_text().strip() for n in (1, 2)] == ["200", "200"]
    (row,) = rows(wd)
    assert row["rule"] == "group:both" and row["state"] == "succeeded"


def test_only_memory_and_runtime_can_be_learned(tmp_path):
    wd = snakefile(
        tmp_path,
        'rule big:\n    output: "x"\n    resources: disk_mb=learned(default=10)\n'
        '    shell: "touch {output}"\n',
    )
    run = snakemake(wd, *HYBRID)
    assert run.returncode == 1
    assert (
        "Rule 'big': resource 'disk_mb' is learned(), but only mem_mb and runtime (also "
        "written mem or mem_mib) can be learned from past runs."
    ) in run.stderr
    assert not (wd / "x").exists()
