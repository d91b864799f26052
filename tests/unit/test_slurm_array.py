"""The batch script of an array job runs the task's own command, nothing else."""

import subprocess

import pytest

slurm_array = pytest.importorskip("snakemake_executor_hybrid.backends.slurm_array")


def run_task(script: str, task: str) -> subprocess.CompletedProcess:
    env = {"SLURM_ARRAY_TASK_ID": task}
    return subprocess.run(["sh", "-s"], input=script, text=True, capture_output=True, env=env)


def test_each_task_runs_its_own_command_with_quotes_intact():
    commands = ["echo one", "echo 'two words' \"$SLURM_ARRAY_TASK_ID\"", "exit 7"]
    script = slurm_array.dispatch_script(commands)
    assert run_task(script, "1").stdout == "one\n"
    assert run_task(script, "2").stdout == "two words 2\n"
    assert run_task(script, "3").returncode == 7


def test_a_task_without_a_command_fails_and_says_so():
    done = run_task(slurm_array.dispatch_script(["true"]), "9")
    assert done.returncode == 2 and "no command for array task 9" in done.stderr
