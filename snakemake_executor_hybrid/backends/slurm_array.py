"""SLURM array jobs where each task runs only its own job (``--slurm-array-jobs``).

snakemake-executor-plugin-slurm 2.8.0 starts every task of an array as the first
task's inner Snakemake, which runs the task's own job as a nested call and then
checks (and, on failure, deletes) the *first* job's output: tasks other than the
first fail, and take the first one's output with them. Here the array's batch
script picks the task's own command by ``SLURM_ARRAY_TASK_ID``; the sbatch
options (account, partition, resources, log file pattern) stay the plugin's.
"""

import shlex
import subprocess
from collections.abc import Sequence
from typing import Any

from snakemake_executor_plugin_slurm.submit_string import get_submit_command
from snakemake_executor_plugin_slurm.utils import get_job_wildcards, set_gres_string
from snakemake_executor_plugin_slurm.validation import (
    validate_or_get_slurm_job_id,
    validate_slurm_extra,
)
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo


def dispatch_script(commands: Sequence[str], first_task: int = 1) -> str:
    """A batch script running ``commands[i]`` as array task ``first_task + i``."""
    lines = ["#!/bin/sh", 'case "$SLURM_ARRAY_TASK_ID" in']
    for index, command in enumerate(commands, start=first_task):
        lines.append(f"  {index}) exec /bin/sh -c {shlex.quote(command)} ;;")
    lines += ['  *) echo "no command for array task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;', "esac"]
    return "\n".join(lines) + "\n"


def submit_command(backend: Any, job: Any, logfile: Any, comment: str, request: Any = None) -> str:
    """The plugin's sbatch command line for ``job`` of this run, with its log file
    pattern and comment; the resources asked are ``request``'s where one stands for
    several jobs (account and partition stay ``job``'s)."""
    params = {
        "run_uuid": backend.run_uuid,
        "slurm_logfile": logfile,
        "comment_str": comment,
        "account": next(backend.get_account_arg(job)),
        "partition": backend.get_partition_arg(job),
        "workdir": backend.workflow.workdir_init,
    }
    return get_submit_command(
        request or job,
        params,
        settings=backend.workflow.executor_settings,
        failed_nodes=backend._failed_nodes,
    )


def submit_array(backend: Any, jobs: list[Any]) -> None:
    """Submit ``jobs`` (one rule, same resources) as arrays of at most
    ``backend.max_array_size`` tasks; report each task as its own job."""
    first = jobs[0]
    kind = "group" if first.is_group() else "rule"
    logdir = backend.slurm_logdir / f"{kind}_{first.name}"
    logdir.mkdir(parents=True, exist_ok=True)
    for job in jobs:
        validate_slurm_extra(job)
    call = submit_command(backend, first, logdir / "%A_%a.log", f"{kind}_{first.name}")
    call += set_gres_string(first)
    size = max(1, int(backend.max_array_size))
    for start in range(0, len(jobs), size):
        chunk = jobs[start : start + size]
        _submit_chunk(backend, f"{call} --array=1-{len(chunk)} /dev/stdin", chunk, logdir)


def _submit_chunk(backend: Any, call: str, jobs: list[Any], logdir: Any) -> None:
    script = dispatch_script([backend.format_job_exec(job) for job in jobs])
    backend.logger.debug(f"sbatch call: {call}")
    # the plugin builds its sbatch options as one shell string, quoted for a shell
    done = subprocess.run(
        shlex.split(call), input=script, text=True, capture_output=True, timeout=120
    )
    if done.returncode != 0:
        for job in jobs:
            backend._report_job_error_threadsafe(
                SubmittedJobInfo(job),
                f"sbatch refused the array job: {done.stderr.strip()}\n    sbatch call: {call}",
            )
        return
    slurm_jobid = validate_or_get_slurm_job_id(done.stdout.strip().split(";")[0], done.stdout)
    for index, job in enumerate(jobs, start=1):
        task = f"{slurm_jobid}_{index}"
        log = logdir / f"{task}.log"
        backend._report_job_submission_threadsafe(
            SubmittedJobInfo(job, external_jobid=task, aux={"slurm_logfile": log})
        )
    names = ", ".join(f"{job.jobid}->{slurm_jobid}_{i}" for i, job in enumerate(jobs, 1))
    wildcards = get_job_wildcards(jobs[0])
    backend.logger.info(
        f"Submitted array job {slurm_jobid} of rule {jobs[0].name}"
        f"{f' ({wildcards}, ...)' if wildcards else ''}: {names}"
    )
