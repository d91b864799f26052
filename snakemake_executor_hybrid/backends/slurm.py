"""The ``slurm`` backend: snakemake-executor-plugin-slurm, with its defects fixed.

Submission (every ``slurm_*`` resource, every ``--slurm-*`` flag, partitions,
logs, array jobs) is the upstream plugin's own code. Replaced here:

* status: one batched ``sacct`` call per cycle every ``--hybrid-slurm-status-interval``
  seconds (upstream waits 40 s, then backs off to 180 s), mapped through one state
  table, so ``CANCELLED by <uid>`` is a failure, not a job running forever; a job
  SLURM no longer knows, or an accounting database that keeps failing, is an
  error instead of a hang;
* shutdown does not wait out a status sleep;
* cancel stops submitting first and then cancels every job of the run by name,
  including submissions that were in flight;
* the default account is read from ``sacctmgr`` (upstream's guess pipes sacct
  through ``tail`` without a shell and always fails);
* a job that can never start (pending for a reason that cannot clear, or refused
  by sbatch) is cancelled and reported at once, marked as an infrastructure
  failure (it may fail over); a job that ended is reported with what it used (one
  batched sacct with job steps) and, if SLURM killed it for memory, as
  OUT_OF_MEMORY (see slurm_outcome).

Added: bundles, several short jobs of one rule in one SLURM job, each reported on
its own (slurm_bundle, slurm_bundle_jobs, docs/bundling.md).
"""

import asyncio
import contextlib
import dataclasses
import getpass
import shlex
import subprocess
import threading
import time
from collections.abc import AsyncGenerator
from functools import partial
from pathlib import Path
from typing import Any

from snakemake_executor_plugin_slurm import Executor as SlurmPluginExecutor
from snakemake_executor_plugin_slurm import common_settings as slurm_common_settings
from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo

from ..states import JobState
from . import slurm_array
from . import slurm_bundle as sb
from . import slurm_checks as checks
from . import slurm_outcome as so
from . import slurm_status as st
from .base import OUTCOME, Host, Outcome, ReportsToHost, SpawnsWithHostArgs, attach
from .slurm_bundle_jobs import Bundling

# A submitted job that neither sacct nor squeue reports for this long is lost.
LOST_AFTER_SECONDS = 120.0
LOG_TAIL_BYTES = 65536


class WorkflowView:
    """The workflow as the SLURM plugin must see it: its own settings object."""

    def __init__(self, workflow: Any, executor_settings: Any) -> None:
        self._workflow = workflow
        self.executor_settings = executor_settings

    def __getattr__(self, name: str) -> Any:
        return getattr(self._workflow, name)


class SlurmBackend(Bundling, ReportsToHost, SpawnsWithHostArgs, SlurmPluginExecutor):
    name = "slurm"

    def __init__(self, host: Host) -> None:
        # Set before super().__init__(): it starts the status thread.
        self._host = host
        self._status_interval = host.settings.slurm_status_interval
        self._status_failures = 0
        self._first_missing: dict[str, float] = {}
        self._account_lock = threading.Lock()
        self._default_account_arg: str | None = None
        self._checks = checks.Checks(_run, host.logger)
        settings = host.plugin_settings(self.name)
        self._use_squeue = _status_command(settings, host.logger) == "squeue"
        self._inner = threading.local()  # the bundle whose command is being formatted
        super().__init__(WorkflowView(host.workflow, settings), host.logger)
        self._bundler = sb.Bundler(self, host.settings, partial(host.wall_times, self.name))

    @property
    def common_settings(self):
        return slurm_common_settings

    # -- status ---------------------------------------------------------------

    async def check_active_jobs(
        self, active_jobs: list[SubmittedJobInfo]
    ) -> AsyncGenerator[SubmittedJobInfo, None]:
        if not active_jobs:
            return
        records = await self._query([j.external_jobid for j in active_jobs])
        if records is None:
            for job_info in active_jobs:
                yield job_info
            return
        requeue = bool(self.workflow.executor_settings.requeue)
        self._bundler.read_events(active_jobs)  # after the query: a bundle seen ended has
        # written the events of all the members it ran
        missing = [j for j in active_jobs if st.lookup(records, j.external_jobid) is None]
        lost = await self._lost(missing)
        final, never = [], []
        for job_info in active_jobs:
            event = self._bundler.ended(job_info)
            if event is not None:
                self._report_member(job_info, event)
                continue
            record = st.lookup(records, job_info.external_jobid)
            if record is None:
                if job_info.external_jobid in lost:
                    self._first_missing.pop(job_info.external_jobid, None)
                    self.report_job_error(
                        job_info,
                        msg=f"SLURM job {job_info.external_jobid} is gone: neither "
                        f"sacct nor squeue has reported it for {LOST_AFTER_SECONDS:.0f} s. "
                        f"SLURM log: {job_info.aux.get('slurm_logfile')}",
                    )
                else:
                    yield job_info
                continue
            self._first_missing.pop(job_info.external_jobid, None)
            state = record.state(requeue)
            if state is not JobState.QUEUED:
                self._bundler.started(record.job_id)
            if state.final:
                final.append((job_info, record))
            elif state is JobState.QUEUED and (
                message := await self._checks.never_starts(job_info.job, record)
            ):
                never.append((job_info, record, message))
            else:
                yield job_info
        await self._give_up(never)
        used = await self._checks.usage([r.job_id for _, r in final]) if final else {}
        # SLURM requeues a batch job after a node failure (JobRequeue=1, the default):
        # one that is reported failed (or fails over) must not run again there.
        failed = [r.job_id for _, r in final if r.native_state in so.INFRASTRUCTURE_STATES]
        if failed:
            await _run(st.scancel_ids_argv(failed))
        for job_info, record in final:
            if self._bundler.bundle_of(job_info) is not None:
                self._report_unfinished_member(job_info, record, used.get(record.job_id), requeue)
            else:
                self._report_end(job_info, record, used.get(record.job_id), requeue)

    def _report_end(
        self, job_info: SubmittedJobInfo, record: st.SlurmRecord, used: so.JobUsage | None,
        requeue: bool,
    ) -> None:  # fmt: skip
        log = job_info.aux.get("slurm_logfile")
        failed = record.state(requeue) is not JobState.SUCCEEDED
        text = _tail(log) if failed else ""
        requested = job_info.job.resources.get("mem_mb")
        requested = requested if isinstance(requested, int) else None
        outcome = so.ended(record, used, text, requested, requeue)
        if outcome.state is JobState.SUCCEEDED:
            self._host.outputs_stored(job_info.job)  # the job's Snakemake did
            self.report_job_success(attach(job_info, outcome))
            self._remove_log(job_info)
            return
        if outcome.state is JobState.NODE_FAILED and record.nodes:
            self._failed_nodes.add(record.nodes)
        message = st.failure_message(record, log, outcome.reason)
        self.report_job_error(
            attach(job_info, dataclasses.replace(outcome, message=message)),
            msg=message,
            aux_logs=[str(log)] if log else [],
        )

    async def _give_up(self, never: list[tuple[SubmittedJobInfo, st.SlurmRecord, str]]) -> None:
        """Cancel jobs that can never start and report them (infrastructure failures)."""
        if not never:
            return
        await _run(st.scancel_ids_argv(list(dict.fromkeys(r.job_id for _, r, _ in never))))
        for job_info, _, problem in never:
            message = problem + so.FIX
            outcome = Outcome(JobState.FAILED, problem, infrastructure=True, message=message)
            self.report_job_error(attach(job_info, outcome), msg=message)

    def outcome(self, job_info: SubmittedJobInfo, state: JobState, msg: Any) -> Outcome:
        """sbatch refusing a job (upstream reports it as an error without a job id) is an
        infrastructure failure, told with the request and the partition's limits."""
        text = str(msg or "")
        if OUTCOME in (job_info.aux or {}) or not text.startswith(_SBATCH_FAILED):
            return super().outcome(job_info, state, msg)
        error = text.split("The error message was '", 1)[-1].split("'.\n", 1)[0]
        request = checks.request(job_info.job, None)
        limits = self._checks.limits_now(request.partition)
        problem = so.refused(request, error, limits)
        return Outcome(JobState.FAILED, problem, infrastructure=True, message=problem + so.FIX)

    async def _query(self, job_ids: list[str]) -> dict[str, st.SlurmRecord] | None:
        if self._use_squeue:
            queries = [(st.squeue_status_argv(self.run_uuid), st.parse_squeue)]
        else:
            queries = [(argv, st.parse_sacct) for argv in st.sacct_argvs(job_ids)]
        records: dict[str, st.SlurmRecord] = {}
        for argv, parse in queries:
            async with self.status_rate_limiter:
                code, out, err = await _run(argv)
            if code != 0:
                self._status_failed(argv, err)
                return None
            records.update(parse(out))
        self._status_failures = 0
        return records

    def _status_failed(self, argv: list[str], err: str) -> None:
        """Warn, or raise once the query failed --slurm-status-attempts times in a row."""
        self._status_failures += 1
        attempts = max(1, int(self.workflow.executor_settings.status_attempts or 5))
        message = f"'{' '.join(argv[:2])} ...' failed: {err.strip() or 'no message'}"
        if self._status_failures >= attempts:
            need = "squeue" if self._use_squeue else "job accounting (slurmdbd) for sacct"
            raise WorkflowError(
                f"SLURM status query failed {self._status_failures} times in a row: "
                f"{message}. The SLURM backend needs {need}; ask your administrators, "
                f"or check '{argv[0]}' works on this host."
            )
        self.logger.warning(f"hybrid: {message} (will retry)")

    async def _lost(self, missing: list[SubmittedJobInfo]) -> set[str]:
        """Ids, among jobs sacct does not list, that squeue does not hold either
        for LOST_AFTER_SECONDS."""
        if not missing:
            return set()
        now = time.monotonic()
        overdue = [
            j.external_jobid
            for j in missing
            if now - self._first_missing.setdefault(j.external_jobid, now) >= LOST_AFTER_SECONDS
        ]
        if not overdue:
            return set()
        code, out, _ = await _run(st.squeue_argv(self.run_uuid))
        if code != 0:
            return set()
        queued = {one for listed in out.split() for one in st.expand_job_ids(listed)}
        return {job_id for job_id in overdue if job_id not in queued}

    def _remove_log(self, job_info: SubmittedJobInfo) -> None:
        log = job_info.aux.get("slurm_logfile")
        if log is not None and not self.workflow.executor_settings.keep_successful_logs:
            with contextlib.suppress(OSError):
                Path(log).unlink(missing_ok=True)

    async def sleep(self) -> None:
        deadline = time.monotonic() + self._status_interval
        while self.wait and time.monotonic() < deadline:
            await asyncio.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    # -- submission and cancellation -----------------------------------------

    def get_account_arg(self, job: Any):
        if job.resources.get("slurm_account"):
            yield from super().get_account_arg(job)
            return
        with self._account_lock:  # submissions run in two threads
            if self._default_account_arg is None:
                account = _default_account()
                self._default_account_arg = f" -A {shlex.quote(account)}" if account else ""
                if account:
                    self.logger.info(f"hybrid: using SLURM default account {account}")
        yield self._default_account_arg

    def run_array_jobs(self, jobs: list[Any]) -> None:
        """--slurm-array-jobs: each task runs its own job (see slurm_array)."""
        try:
            slurm_array.submit_array(self, jobs)
        except Exception as e:  # noqa: BLE001 - report, as the plugin does, per job
            for job in jobs:
                self._report_job_error_threadsafe(
                    SubmittedJobInfo(job), f"array job submission failed: {e}"
                )

    def cancel_jobs(self, active_jobs: list[SubmittedJobInfo]) -> None:
        argv = st.scancel_argv(self.run_uuid, clusters=bool(self._submitted_job_clusters))
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            self.logger.warning(f"hybrid: '{' '.join(argv)}' failed: {result.stderr.strip()}")

    def cancel(self) -> None:
        # No new sbatch may start once cancelling; then cancel all jobs by name.
        held = self._bundler.stop()
        self._job_submission_executor.shutdown(wait=True, cancel_futures=True)
        super().cancel()
        for job in held:
            self.report_job_error(SubmittedJobInfo(job), msg="cancelled before it was submitted")

    def shutdown(self) -> None:
        self._bundler.stop()
        super().shutdown()


_SBATCH_FAILED = ("SLURM sbatch failed", "sbatch refused")  # upstream's, slurm_array's, bundles'


def _tail(log: Any) -> str:
    """The end of a job's log (where SLURM writes why it killed the job)."""
    try:
        with open(str(log), "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - LOG_TAIL_BYTES))
            return f.read().decode(errors="replace")
    except (OSError, TypeError):
        return ""


def _default_account() -> str:
    """The submitting user's DefaultAccount, or '' (sbatch then applies it itself)."""
    try:
        result = subprocess.run(
            st.default_account_argv(getpass.getuser()),
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    return lines[0] if result.returncode == 0 and lines else ""


async def _run(argv: list[str]) -> tuple[int, str, str]:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except OSError as e:
        return 127, "", str(e)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


def _status_command(settings: Any, logger: Any) -> str:
    """``--slurm-status-command``: sacct (default) or squeue; anything else is refused."""
    command = getattr(settings, "status_command", None) or "sacct"
    if command not in ("sacct", "squeue"):
        raise WorkflowError(
            f"--slurm-status-command {command!r} is not supported by the hybrid executor's "
            "SLURM backend: use 'sacct' (needs job accounting) or 'squeue'."
        )
    if command == "squeue":
        logger.info(
            "hybrid: SLURM status from squeue (--slurm-status-command squeue): a job "
            "SLURM forgets (after MinJobAge) before a status check sees it finish is "
            "reported lost; sacct has no such limit."
        )
    return command


def create(host: Host) -> SlurmBackend:
    return SlurmBackend(host)
