"""What the SLURM backend does for bundles (see slurm_bundle): the sbatch of a bundle,
its inner command, and the report of each member as it ends.

:class:`Bundling` is a mixin of the SLURM backend: ready jobs go to its bundler
first; the inner command of a bundle is a plain job's inner Snakemake call (so every
argument the run passes on is there) with every member as a target job, run by
``bundle_run`` with Snakemake's local executor instead of ``slurm-jobstep``.
"""

import asyncio
import contextlib
import shlex
import subprocess
import threading
from pathlib import Path
from typing import Any

from snakemake_executor_plugin_slurm.utils import set_gres_string
from snakemake_executor_plugin_slurm.validation import (
    validate_or_get_slurm_job_id,
    validate_slurm_extra,
)
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo

from ..states import JobState
from . import slurm_outcome as so
from . import slurm_status as st
from .base import Outcome, Usage, attach
from .bundle_events import SUCCEEDED, MemberEvent
from .bundle_plan import Shape, inner_args
from .slurm_array import submit_command

BUNDLE_RUN = "snakemake_executor_hybrid.backends.bundle_run"


class _Resources(dict):
    """Resources with attribute access, as the SLURM plugin reads a job's."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class BundleRequest:
    """What the sbatch of a bundle asks: the first member's request with the CPUs,
    memory and time limit of the whole bundle."""

    def __init__(self, first: Any, cpus: int, mem_mb: int | None, runtime: int | None) -> None:
        res = _Resources(first.resources.items())
        res["_cores"] = cpus
        res["cpus_per_task"] = cpus
        if mem_mb is not None and not res.get("mem_mb_per_cpu"):
            res["mem_mb"] = mem_mb
        if runtime is not None:
            res["runtime"] = runtime
        self.resources = res
        self.threads = cpus
        self.name = first.name
        self.rule = first.rule

    def is_group(self) -> bool:
        return False


def sbatch(
    backend: Any, members: list[Any], shape: Shape, runtime: int | None, events: Path,
    members_file: Path,
) -> tuple[str, Path] | None:  # fmt: skip
    """Submit a bundle: (SLURM job id, its log), or None when sbatch refused it (each
    member is reported failed then)."""
    first = members[0]
    validate_slurm_extra(first)
    logdir = backend.slurm_logdir / f"bundle_{first.name}"
    logdir.mkdir(parents=True, exist_ok=True)
    request = BundleRequest(first, shape.cpus, shape.mem_mb, runtime)
    comment = f"bundle_{first.name}_{len(members)}"
    call = submit_command(backend, first, logdir / "%j.log", comment, request)
    call += set_gres_string(request)
    command = backend.format_bundle_exec(members, shape.cpus, str(events), str(members_file))
    script = f"#!/bin/sh\n{command}\n"
    backend.logger.debug(f"sbatch call: {call} /dev/stdin\nbundle script:\n{script}")
    # the plugin builds its sbatch options as one shell string, quoted for a shell
    done = subprocess.run(
        [*shlex.split(call), "/dev/stdin"],
        input=script, text=True, capture_output=True, timeout=120,
    )  # fmt: skip
    if done.returncode != 0:
        for job in members:
            backend._report_job_error_threadsafe(
                SubmittedJobInfo(job),
                f"sbatch refused the bundle: {done.stderr.strip()}\n    sbatch call: {call}",
            )
        return None
    slurm_id = validate_or_get_slurm_job_id(done.stdout.strip().split(";")[0], done.stdout)
    return slurm_id, logdir / f"{slurm_id}.log"


class Bundling:
    """Mixin (first base of the SLURM backend): bundles' commands and member reports."""

    _host: Any
    _bundler: Any
    _inner: threading.local
    _checks: Any
    _main_event_loop: Any
    workflow: Any
    logger: Any
    spawn_containers: bool
    # of the backend it is mixed into
    format_job_exec: Any
    report_job_success: Any
    report_job_error: Any
    _report_end: Any

    def run_jobs(self, jobs: list[Any]) -> None:
        if getattr(self, "_main_event_loop", None) is None:  # reports from submission threads
            with contextlib.suppress(RuntimeError):
                self._main_event_loop = asyncio.get_running_loop()
        rest = self._bundler.take(jobs)
        if rest:
            super().run_jobs(rest)  # type: ignore[misc]

    def partition_limits(self, job: Any) -> Any:
        """CPUs and memory of the largest node of the job's partition (None: unknown)."""
        return self._checks.limits_now(job.resources.get("slurm_partition") or None)

    def format_bundle_exec(self, members: list[Any], cores: int, events: str, joined: str) -> str:
        """The inner command of a bundle: one Snakemake (bundle_run) for all members."""
        self._inner.bundle = (members, cores, events, joined)
        try:
            return self.format_job_exec(members[0])
        finally:
            self._inner.bundle = None

    def get_job_args(self, job: Any, **kwargs: Any) -> str:
        bundle = getattr(self._inner, "bundle", None)
        if bundle is None:
            return super().get_job_args(job, **kwargs)  # type: ignore[misc]
        members, cores, _, _ = bundle
        unneeded = {str(f) for m in members for f in self.workflow.dag.get_unneeded_temp_files(m)}
        targets = [spec for m in members for spec in m.get_target_spec()]
        return inner_args(targets, job.rule.name, cores, int(job.attempt), sorted(unneeded))

    def get_python_executable(self) -> str:
        python = super().get_python_executable()  # type: ignore[misc]
        bundle = getattr(self._inner, "bundle", None)
        if bundle is None:
            return python
        files = f"--events {shlex.quote(bundle[2])} --members {shlex.quote(bundle[3])}"
        return f"{python} -m {BUNDLE_RUN} {files}"

    def additional_general_args(self) -> str:
        bundle = getattr(self._inner, "bundle", None)
        if bundle is None:
            return super().additional_general_args()  # type: ignore[misc]
        # Snakemake's local executor inside, not one slurm-jobstep step per member
        return self._host.spawn_args(bundle[0][0], self.spawn_containers)

    def _report_member(self, job_info: SubmittedJobInfo, event: MemberEvent) -> None:
        """A member of a bundle ended, as the bundle's inner Snakemake said."""
        log = job_info.aux.get("slurm_logfile")
        usage = Usage(wall_s=event.wall_s)
        ok = event.state == SUCCEEDED
        if ok:
            self._host.outputs_stored(job_info.job)  # the bundle's Snakemake did
            self.report_job_success(attach(job_info, Outcome(JobState.SUCCEEDED, usage=usage)))
        else:
            reason = f"failed in bundle SLURM job {job_info.external_jobid}"
            message = (
                f"Job {job_info.job.jobid} {reason}; its error is in the bundle's log. "
                f"SLURM log: {log}\n"
            )
            outcome = Outcome(JobState.FAILED, reason, usage=usage, message=message)
            self.report_job_error(
                attach(job_info, outcome), msg=message, aux_logs=[str(log)] if log else []
            )
        keep = bool(self.workflow.executor_settings.keep_successful_logs)
        self._bundler.reported(job_info, ok, keep)

    def _report_unfinished_member(
        self, job_info: SubmittedJobInfo, record: st.SlurmRecord, used: so.JobUsage | None,
        requeue: bool,
    ) -> None:  # fmt: skip
        """A member of a bundle that ended without saying how the member ended."""
        if record.state(requeue) is JobState.SUCCEEDED:
            log = job_info.aux.get("slurm_logfile")
            reason = f"bundle SLURM job {record.job_id} ended without running it to the end"
            message = f"Job {job_info.job.jobid}: {reason}. SLURM log: {log}\n"
            outcome = Outcome(JobState.FAILED, reason, message=message)
            self.report_job_error(
                attach(job_info, outcome), msg=message, aux_logs=[str(log)] if log else []
            )
        else:
            self._report_end(job_info, record, used, requeue)
        self._bundler.reported(job_info, False, True)
