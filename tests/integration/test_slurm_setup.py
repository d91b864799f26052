"""scripts/slurm/up after the daemons died without a clean shutdown (a machine or
container restart): jobs recovered as running from the controller's saved state must
not hold the node."""

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, sacct_jobs, squeue_ids, wait_until

STARTED = Path(os.environ.get("HYBRID_SLURM_STATE_DIR", "/run/hybrid-slurm")) / "started"


def started_here(name: str) -> int | None:
    """The pid of daemon NAME if scripts/slurm/up started it (others are not ours)."""
    try:
        return int((STARTED / f"{name}.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def state_dir() -> Path:
    config = subprocess.run(
        ["scontrol", "show", "config"], capture_output=True, text=True, check=True
    ).stdout
    for line in config.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "StateSaveLocation":
            return Path(value.strip())
    raise AssertionError("no StateSaveLocation in 'scontrol show config'")


def kill_dead(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm")
def test_up_cancels_jobs_that_died_with_the_daemons(tmp_path):
    daemons = {name: started_here(name) for name in ("slurmctld", "slurmd")}
    if None in daemons.values():
        pytest.skip("slurmctld and slurmd were not started by scripts/slurm/up")
    name = f"dead-{os.getpid()}"
    job = subprocess.run(
        ["sbatch", "--parsable", f"--job-name={name}", "-c1", "-t", "10", f"-D{tmp_path}"]
        + ["--wrap", f"touch {tmp_path}/started; sleep 600"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    wait_until(lambda: (tmp_path / "started").exists(), 120, "the job to start")
    started = (tmp_path / "started").stat().st_mtime
    saved = state_dir() / "job_state"  # written a few seconds after a change
    wait_until(lambda: saved.stat().st_mtime > started, 60, "slurmctld to save the running job")
    steps = subprocess.run(["pgrep", "-x", "slurmstepd"], capture_output=True, text=True)
    kill_dead([*daemons.values(), *map(int, steps.stdout.split())])  # as a restart would
    subprocess.run(["pkill", "-KILL", "-f", f"touch {tmp_path}/started; sleep 600"])

    up = subprocess.run(
        [str(REPO / "scripts" / "slurm" / "up")], capture_output=True, text=True, timeout=300
    )
    assert up.returncode == 0, up.stderr
    assert f"cancelling jobs that died with the previous daemons: {job}" in up.stderr
    assert not squeue_ids(name)

    # the whole node is free again: a job needing every CPU starts at once
    cpus = subprocess.run(
        ["sinfo", "-h", "-o", "%c"], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    whole = f"whole-{os.getpid()}"
    subprocess.run(
        ["sbatch", f"--job-name={whole}", f"-c{cpus}", "-t", "5", f"-D{tmp_path}"]
        + ["--wrap", "true"],
        check=True,
        capture_output=True,
    )
    wait_until(lambda: list(sacct_jobs(whole).values()) == ["COMPLETED"], 60, "a job on every CPU")
