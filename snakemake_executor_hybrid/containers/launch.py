"""Run one shell command of a job inside its rule's container.

Snakemake runs a rule's shell commands as ``SHELL -c COMMAND``; for a
containerised rule the hybrid executor sets the rule's ``shell_exec`` resource
to a small script that calls::

    python -m snakemake_executor_hybrid.containers.launch SPEC.json -c COMMAND

This works wherever the job's shell commands run (in Snakemake itself, in a
local group job, inside a SLURM job), with every Snakemake feature that builds
the command (log, benchmark, script, retries) untouched.
"""

import json
import math
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from .. import compat
from .runtimes import Bind, ContainerSpec, kill_argv, run_argv

STOP_GRACE = 5.0  # seconds a stopping container gets before it is killed

# podman/docker's own exit statuses (not the command's)
RUNTIME_STATUS = {
    125: "the container runtime itself failed (see its message above)",
    126: "the shell in the image could not be invoked",
    127: "a command (or the shell '{shell}') was not found in the image",
}


def load_spec(path: str) -> ContainerSpec:
    with open(path) as f:
        data = json.load(f)
    data["binds"] = tuple(Bind(**b) for b in data["binds"])
    data["env"] = tuple(data["env"])
    data["args"] = tuple(data["args"])
    return ContainerSpec(**data)


def say(line: str) -> None:
    """One line to the job's stderr: this process is the job's shell, its log the job's."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def failure_message(spec: ContainerSpec, status: int) -> str:
    where = f"in container {spec.image} ({spec.runtime})"
    if status < 0:
        return f"hybrid: command killed by signal {-status} {where}"
    text = f"hybrid: command failed with exit status {status} {where}"
    hint = RUNTIME_STATUS.get(status) if spec.runtime != "apptainer" else None
    return f"{text}; {hint.format(shell=spec.shell)}" if hint else text


def python_script(command: str, spec: ContainerSpec, launcher: str) -> str:
    """A ``script:`` rule's Python runs from the image, as under apptainer.

    Snakemake starts such scripts as ``<its own python> <script>``, a path that
    means nothing inside the image; inside the container, ``shell()`` calls of
    the script use the image's shell (see compat.repair_script_preamble).
    """
    host = f"{shlex.quote(sys.executable)} "
    if not command.startswith(host):
        return command
    rest = command[len(host) :]
    script = Path(shlex.split(rest)[0])
    if script.parent.name == "scripts" and script.parent.parent.name == ".snakemake":
        compat.repair_script_preamble(script, launcher, spec.shell)
    return f"python3 {rest}"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[1] != "-c":
        say("usage: python -m snakemake_executor_hybrid.containers.launch SPEC -c COMMAND")
        return 2
    spec = load_spec(args[0])
    launcher = str(Path(args[0]).with_suffix(".sh"))
    name = f"snakemake-{secrets.token_hex(6)}"
    command = run_argv(spec, python_script(args[2], spec, launcher), dict(os.environ), name)
    try:
        child = subprocess.Popen(command)
    except FileNotFoundError:
        say(
            f"hybrid: container runtime '{spec.runtime}' is not on PATH "
            f"of {os.uname().nodename}; install it there or choose another runtime "
            "(resource container_runtime, --hybrid-container-runtime)."
        )
        return 127
    status = wait(child, spec.runtime, name)
    if status != 0:
        say(failure_message(spec, status))
    return status if status >= 0 else 128 - status


def wait(child: subprocess.Popen[bytes], runtime: str, name: str) -> int:
    """Wait for the container; when asked to stop, pass the signal on, then make sure.

    The signal reaches only the container's first process (a shell waiting for its
    command does not act on it), so after STOP_GRACE seconds the container is killed.
    """
    stop_at: list[float] = []

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)
        if not stop_at:
            stop_at.append(time.monotonic() + STOP_GRACE)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    while True:
        try:
            return child.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            if stop_at and time.monotonic() > stop_at[0]:
                stop_at[0] = math.inf  # once
                kill = kill_argv(runtime, name)
                if kill is None:
                    child.kill()
                else:
                    subprocess.run(kill, capture_output=True, timeout=60)


if __name__ == "__main__":
    sys.exit(main())
