"""Ctrl-C, scancel and time limits: nothing left behind, nothing hangs."""

import os
import re
import signal
import subprocess
import time

import pytest

from tests.conftest import copy_workflow, snakemake, squeue_ids, wait_until
from tests.conftest import start as start_snakemake


def start(wd, *args):
    return start_snakemake(wd, "--executor", "hybrid", "--jobs", "10", *args)


def run_id_of(wd, proc):
    """The SLURM run id (the job name of all SLURM jobs of the run) from the log."""

    def find():
        if proc.poll() is not None:
            raise AssertionError(f"snakemake exited early:\n{proc.stdout.read()}")
        for log in sorted((wd / ".snakemake" / "log").glob("*.log")):
            for line in log.read_text().splitlines():
                if line.startswith("SLURM run ID:"):
                    return line.split(":", 1)[1].strip()
        return None

    return wait_until(find, 60, "the SLURM run id in the log")


def test_sigint_stops_a_local_group_job_and_starts_no_queued_one(tmp_path):
    wd = copy_workflow("local_groups", tmp_path)
    # one core: one group runs; of the other eight, six wait for cores in the
    # backend's workers (one core + 5) and two wait in its queue
    proc = start(wd, "--hybrid-local-cores", "1", "--config", "seconds=300", "count=9")
    wait_until(lambda: list(wd.glob("started.*")), 60, "the first group to start", proc)
    time.sleep(1)  # the others are queued behind it
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert len(list(wd.glob("started.*"))) == 1, out  # no queued group started
    assert "exception calling callback" not in out and "CancelledError" not in out, out
    leftovers = subprocess.run(["pgrep", "-f", str(wd)], capture_output=True, text=True)
    assert leftovers.stdout == "", f"processes left running: {leftovers.stdout}"


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm")
def test_sigint_cancels_slurm_jobs_and_rerun_completes(tmp_path):
    wd = copy_workflow("long", tmp_path)
    proc = start(wd, "--config", "seconds=300", "count=3")
    run_id = run_id_of(wd, proc)
    # all three SLURM jobs submitted (one or two running, the rest pending)
    wait_until(lambda: len(squeue_ids(run_id)) == 3, 60, "3 SLURM jobs in squeue")
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    # cancelled jobs may show as COMPLETING for a moment, then must be gone
    wait_until(lambda: squeue_ids(run_id) == [], 30, f"an empty squeue after Ctrl-C:\n{out}")

    rerun = snakemake(
        wd, "--executor", "hybrid", "--jobs", "10", "--config", "seconds=1", "count=3"
    )
    assert rerun.returncode == 0, rerun.stderr
    assert all((wd / f"slurm/{i}.txt").read_text().strip().isdigit() for i in range(3))
    assert all((wd / f"local/{i}.txt").read_text().strip() == "local" for i in range(3))


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm")
def test_scancel_is_reported_as_failure_not_a_hang(tmp_path):
    wd = copy_workflow("long", tmp_path)
    proc = start(wd, "--config", "seconds=300", "count=1", "--", "slurm/0.txt")
    run_id = run_id_of(wd, proc)
    (job_id,) = wait_until(lambda: squeue_ids(run_id), 60, "the SLURM job in squeue")
    subprocess.run(["scancel", job_id], check=True)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert f"SLURM job {job_id} ended CANCELLED" in out
    assert re.search(rf"SLURM log: \S+/rule_on_slurm/\S*\b{job_id}\.log", out), out


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm")
def test_time_limit_is_reported_as_timeout(tmp_path):
    wd = copy_workflow("long", tmp_path)
    proc = start(wd, "--config", "seconds=300", "count=1", "runtime=1", "--", "slurm/0.txt")
    out, _ = proc.communicate(timeout=240)  # SLURM enforces a 1-minute limit within ~70 s
    assert proc.returncode != 0
    assert "ended TIMEOUT" in out
    assert "SLURM log:" in out and "rule_on_slurm" in out
