"""Helpers for the gate tests: run Snakemake and snakemake-gate as real processes."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

GATE_CLI = [sys.executable, "-m", "snakemake_human_gate"]


def gate_cli(
    store: Path, *args: str, user: str | None = None, pythonpath: Path | None = None
) -> subprocess.CompletedProcess:
    """Run snakemake-gate; as another OS user, with the system Python and ``pythonpath``."""
    argv = [*GATE_CLI, "--dir", str(store), *args]
    env = None
    if user:
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        argv = [runuser, "-u", user, "--", "/usr/bin/python3", *argv[1:]]
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(pythonpath)}
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)


def pending(store: Path, all_gates: bool = False) -> list[dict]:
    run = gate_cli(store, "list", "--json", *(["--all"] if all_gates else []))
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def start(wd: Path, *args: str) -> subprocess.Popen:
    """Snakemake in its own session (so a test can kill it and everything it started)."""
    return subprocess.Popen(
        [sys.executable, "-m", "snakemake", *args],
        cwd=wd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_until(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"snakemake exited ({proc.returncode}) while waiting for "
                f"{what}:\n{proc.stdout.read() if proc.stdout else ''}"
            )
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_pending(store: Path, count: int, proc: subprocess.Popen, timeout: float = 120) -> list:
    def enough():
        gates = pending(store) if (store / "gates").exists() else []
        return gates if len(gates) >= count else None

    return wait_until(enough, timeout, f"{count} pending gate(s)", proc)


def finish(proc: subprocess.Popen, timeout: float = 180) -> str:
    out, _ = proc.communicate(timeout=timeout)
    return out


def kill_hard(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)


def audit(store: Path) -> list[dict]:
    lines = (store / "audit.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]
