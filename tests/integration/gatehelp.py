"""Helpers for the gate tests: run Snakemake and snakemake-gate as real processes."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import wait_until

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
