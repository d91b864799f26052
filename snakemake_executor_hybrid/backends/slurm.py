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
  through ``tail`` without a shell and always fails).
"""

import asyncio
import contextlib
import getpass
import shlex
import subprocess
import threading
import time
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from snakemake_executor_plugin_slurm import Executor as SlurmPluginExecutor
from snakemake_executor_plugin_slurm import common_settings as slurm_common_settings
from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo

from ..states import JobState
from . import slurm_array
from . import slurm_status as st
from .base import Host

# A submitted job that neither sacct nor squeue reports for this long is lost.
LOST_AFTER_SECONDS = 120.0


class WorkflowView:
    """The workflow as the SLURM plugin must see it: its own settings object."""

    def __init__(self, workflow: Any, executor_settings: Any) -> None:
        self._workflow = workflow
        self.executor_settings = executor_settings

    def __getattr__(self, name: str) -> Any:
        return getattr(self._workflow, name)


class SlurmBackend(SlurmPluginExecutor):
    name = "slurm"

    def __init__(self, host: Host) -> None:
        # Set before super().__init__(): it starts the status thread.
        self._host = host
        self._status_interval = host.settings.slurm_status_interval
        self._status_failures = 0
        self._first_missing: dict[str, float] = {}
        self._account_lock = threading.Lock()
        self._default_account_arg: str | None = None
        settings = host.plugin_settings(self.name)
        self._use_squeue = _status_command(settings, host.logger) == "squeue"
        super().__init__(WorkflowView(host.workflow, settings), host.logger)

    @property
    def common_settings(self):
        return slurm_common_settings

    def additional_general_args(self) -> str:
        return f"{super().additional_general_args()} {self._host.container_args()}".strip()

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
        missing = [j for j in active_jobs if st.lookup(records, j.external_jobid) is None]
        lost = await self._lost(missing)
        for job_info in active_jobs:
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
            if not state.final:
                yield job_info
            elif state is JobState.SUCCEEDED:
                self._host.outputs_stored(job_info.job)  # the job's Snakemake did
                self.report_job_success(job_info)
                self._remove_log(job_info)
            else:
                if state is JobState.NODE_FAILED and record.nodes:
                    self._failed_nodes.add(record.nodes)
                log = job_info.aux.get("slurm_logfile")
                self.report_job_error(
                    job_info,
                    msg=st.failure_message(record, log),
                    aux_logs=[str(log)] if log else [],
                )

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
            need = (
                "squeue" if self._use_squeue else "job accounting (slurmdbd) for sacct"
            )
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
        self._job_submission_executor.shutdown(wait=True, cancel_futures=True)
        super().cancel()


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
