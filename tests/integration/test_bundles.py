"""Bundles on the real SLURM: many short jobs in one SLURM job, each reported on its
own as it ends, retries of only the failed ones, Ctrl-C ends the bundle."""

import os
import re
import signal
import subprocess
import time

import pytest

from tests.conftest import (
    copy_workflow,
    sacct_jobs,
    slurm_run_id,
    snakemake,
    squeue_ids,
    wait_until,
)
from tests.conftest import start as start_snakemake

pytestmark = [pytest.mark.integration, pytest.mark.slurm, pytest.mark.usefixtures("slurm")]

BUNDLE = re.compile(
    r"hybrid: bundle SLURM job (\d+) \(rule (\w+), (\d+) jobs, .*\): jobs ([\d, ]+)"
)


def run(wd, *args, config=()):
    return snakemake(
        wd, "--executor", "hybrid", "--jobs", "20", "--hybrid-slurm-status-interval", "1",
        *args, "--config", *config,
    )  # fmt: skip


def bundles(output: str) -> list[tuple[str, str, int, list[str]]]:
    return [
        (m[1], m[2], int(m[3]), m[4].split(", ")) for m in BUNDLE.finditer(output)
    ]  # fmt: skip


def times(job_id):
    """(Submit, End) of a SLURM job, as sacct prints them (sortable)."""
    argv = ["sacct", "-X", "--parsable2", "--noheader", "--format=Submit,End", f"--jobs={job_id}"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return tuple(out.split()[0].split("|"))


def spans(wd, n):
    """(SLURM job id, start, end) written by each job."""
    found = []
    for i in range(n):
        job, start, end = (wd / "out" / f"{i}.txt").read_text().split()
        found.append((job, float(start), float(end)))
    return found


def test_named_rule_runs_in_one_slurm_job_its_members_in_parallel(tmp_path):
    wd = copy_workflow("bundles", tmp_path)
    done = run(wd, "--hybrid-bundle", "sho*", config=["count=4", "seconds=3"])
    assert done.returncode == 0, done.stderr
    ((slurm_id, rule, count, members),) = bundles(done.stderr)
    assert (rule, count, len(members)) == ("short", 4, 4)
    assert sacct_jobs(slurm_run_id(done.stderr)).keys() == {slurm_id}  # one SLURM job
    ran = spans(wd, 4)
    assert {job for job, _, _ in ran} == {slurm_id}
    # two at a time on the node's 2 CPUs: the second pair starts before the first ends
    starts = sorted(start for _, start, _ in ran)
    ends = sorted(end for _, _, end in ran)
    assert starts[1] < ends[0], ran
    # temp() outputs removed once used, logs and benchmarks as for single jobs
    assert not list((wd / "tmp").glob("*.txt"))
    assert all((wd / f"logs/{i}.log").read_text() == f"job {i} ran\n" for i in range(4))
    assert all((wd / f"bench/{i}.tsv").read_text().startswith("s\t") for i in range(4))
    # the bundle's SLURM log is removed like a successful job's
    assert not list((wd / ".snakemake" / "slurm_logs").rglob("*.log"))


def test_a_failing_member_is_reported_at_once_and_only_it_is_retried(tmp_path):
    wd = copy_workflow("bundles", tmp_path)
    done = run(
        wd, "--hybrid-bundle", "short", "--retries", "1",
        config=["count=4", "seconds=6", "fail=0"],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ((bundle_id, _, _, members),) = bundles(done.stderr)
    assert len(members) == 4
    assert re.search(rf"Job \d+ failed in bundle SLURM job {bundle_id}\b", done.stderr)
    jobs = sacct_jobs(slurm_run_id(done.stderr))
    (retry,) = jobs.keys() - {bundle_id}  # the failed job alone, run again
    ran = spans(wd, 4)
    assert ran[0][0] == retry and {job for job, _, _ in ran[1:]} == {bundle_id}
    # reported when it failed: its retry was submitted while the bundle still ran
    assert times(retry)[0] < times(bundle_id)[1]
    assert (wd / "logs/0.log").read_text() == "job 0 ran\n"


def test_a_failing_member_does_not_fail_the_others(tmp_path):
    wd = copy_workflow("bundles", tmp_path)
    done = run(wd, "--hybrid-bundle", "short", "--keep-going", config=["count=3", "fail=1"])
    assert done.returncode != 0
    assert (wd / "out/0.txt").exists() and (wd / "out/2.txt").exists()
    assert not (wd / "out/1.txt").exists()
    assert "job 1 fails" in (wd / "logs/1.log").read_text()
    ((slurm_id, _, _, _),) = bundles(done.stderr)
    assert re.search(r"log: logs/1\.log, \S+/bundle_short/" + slurm_id + r"\.log", done.stderr)


def test_rules_with_short_history_are_bundled_without_being_named(tmp_path):
    wd = copy_workflow("bundles", tmp_path)
    first = run(wd, config=["count=3"])
    assert first.returncode == 0, first.stderr
    assert bundles(first.stderr) == []  # no history yet: one SLURM job each
    again = run(wd, "--forceall", config=["count=3"])
    assert again.returncode == 0, again.stderr
    assert "rule short is bundled on SLURM: its past jobs took at most" in again.stderr
    assert [count for _, _, count, _ in bundles(again.stderr)] == [3]


def test_ctrl_c_cancels_the_whole_bundle(tmp_path):
    wd = copy_workflow("bundles", tmp_path)
    proc = start_snakemake(
        wd, "--executor", "hybrid", "--jobs", "10", "--hybrid-bundle", "short",
        "--config", "count=4", "seconds=300",
    )  # fmt: skip
    slurm_id, run_id = wait_until(lambda: submitted(wd), 60, "the bundle's submission", proc)
    try:
        wait_until(lambda: running(run_id) == [slurm_id], 60, "the bundle running", proc)
        time.sleep(3)  # its inner Snakemake starts the members
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode != 0
        wait_until(lambda: squeue_ids(run_id) == [], 30, f"an empty squeue after Ctrl-C:\n{out}")
        # the bundle's inner Snakemake and its members' commands end with it
        wait_until(lambda: not leftovers(wd), 30, f"no process left: {leftovers(wd)}")
    finally:
        subprocess.run(["scancel", f"--name={run_id}"], check=False)


def leftovers(wd):
    return subprocess.run(["pgrep", "-af", str(wd)], capture_output=True, text=True).stdout


def running(run_id):
    argv = ["squeue", "--noheader", "--states=RUNNING", "--format=%i", f"--name={run_id}"]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()


def test_scancel_of_a_bundle_fails_its_unfinished_members_with_its_state(tmp_path):
    wd = copy_workflow("bundles", tmp_path)
    proc = start_snakemake(
        wd, "--executor", "hybrid", "--jobs", "10", "--hybrid-bundle", "short",
        "--hybrid-slurm-status-interval", "1", "--config", "count=3", "seconds=300",
    )  # fmt: skip
    slurm_id, run_id = wait_until(lambda: submitted(wd), 60, "the bundle's submission", proc)
    try:
        wait_until(lambda: running(run_id) == [slurm_id], 60, "the bundle running", proc)
        subprocess.run(["scancel", slurm_id], check=True)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode != 0
        assert out.count(f"SLURM job {slurm_id} ended CANCELLED") >= 3, out  # each member
        assert re.search(rf"SLURM log: \S+/bundle_short/{slurm_id}\.log", out), out
    finally:
        subprocess.run(["scancel", f"--name={run_id}"], check=False)


def submitted(wd):
    """(SLURM job id of the first bundle, run id) once the log names them."""
    for path in (wd / ".snakemake" / "log").glob("*.log"):
        found = bundles(path.read_text())
        if found:
            return found[0][0], slurm_run_id(path.read_text())
    return None
