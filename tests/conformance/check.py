"""Run one upstream case under one mode in a process of its own, with a time limit."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 300  # seconds per case; a job that can never start must not hang the suite


@dataclass(frozen=True)
class Outcome:
    case: str
    mode: str
    status: str  # passed, failed, skipped, timeout
    seconds: float
    output: str

    @property
    def tail(self) -> str:
        return "\n".join(self.output.splitlines()[-60:])


def cancel_left_behind() -> None:
    """Cancel SLURM jobs of a case that ran out of time: its Snakemake was killed, its
    jobs (e.g. pending for ever for asking more CPUs than the node has) stay queued.
    Upstream cases run in ``$TMPDIR/snakemake-CASE-XXXX``, which is the jobs' workdir."""
    prefix = os.path.join(tempfile.gettempdir(), "snakemake-")
    listed = subprocess.run(
        ["squeue", "--noheader", "--format=%i %Z", f"--user={os.getuid()}"],
        capture_output=True,
        text=True,
    )
    ids = [
        job_id
        for job_id, _, workdir in (line.partition(" ") for line in listed.stdout.splitlines())
        if workdir.startswith(prefix)
    ]
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True)


def run_case(mode: str, case: str, timeout: float = TIMEOUT) -> Outcome:
    """Run ``case`` under ``mode`` in a session of its own; past ``timeout`` its Snakemake
    gets SIGTERM (it cancels its jobs, SLURM ones included), then SIGKILL. Whatever the
    case leaves running is killed with its session when it ends (upstream's pipe cases
    leave a reader blocked on a FIFO whose writer failed, under --executor local too)."""
    start = time.monotonic()
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.conformance.runner", mode, case],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        status = None
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            status = "timeout"
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if "slurm" in mode:
                cancel_left_behind()
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # leftovers of the case
        log.seek(0)
        output = log.read()
    if status is None:
        status = {0: "passed", 5: "skipped"}.get(process.returncode, "failed")
    return Outcome(case, mode, status, time.monotonic() - start, output)
