"""The ``local`` backend: run jobs on the submitting machine.

Single jobs run exactly as under Snakemake's own local executor (it is reused
here): in-process, except jobs with a ``run:`` block or a ``shadow:`` directory,
which get a process of their own (a shadow job changes its working directory;
several at once in one process would pull it from under each other). They start
only while their threads fit in the backend's core budget; Snakemake does not
enforce ``--local-cores`` for remote executors. Pipe and service groups run
in-process as Snakemake's local executor runs them, all members at once, holding
the cores of the whole group. Other group jobs run as one inner ``python -m
snakemake`` process with the cores their members need at once, as a cluster would
run them.
"""

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import replace
from functools import partial
from typing import Any

from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo
from snakemake_interface_executor_plugins.jobs import JobExecutorInterface

from .. import compat
from ..adaptive.usage import Sampler
from ..processes import stop_group, terminate_tree
from ..states import JobState
from .base import Host, Outcome, ReportsToHost, SpawnsWithHostArgs, Usage

# How long a cancel keeps looking for the shell command of an in-process job that
# was between being started and starting its command.
CANCEL_GRACE_SECONDS = 10.0
# how long what a job's own process leaves in its process group may take to end on
# SIGTERM before it is killed
LEFTOVER_GRACE_SECONDS = 3.0


class CoreBudget:
    """A counting budget of cores; a request larger than the budget takes all of it."""

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError(f"core budget must be at least 1, got {total}")
        self.total = total
        self._free = total
        self._cond = threading.Condition()

    def clamp(self, cores: int) -> int:
        return max(0, min(int(cores), self.total))

    @contextmanager
    def hold(self, cores: int) -> Iterator[int]:
        need = self.clamp(cores)
        with self._cond:
            self._cond.wait_for(lambda: self._free >= need)
            self._free -= need
        try:
            yield need
        finally:
            with self._cond:
                self._free += need
                self._cond.notify_all()


_SnakemakeLocal: Any = compat.local_executor_class()


class LocalBackend(ReportsToHost, SpawnsWithHostArgs, _SnakemakeLocal):
    name = "local"
    pool: ThreadPoolExecutor

    def __init__(self, host: Host) -> None:
        self.budget = CoreBudget(host.local_cores)
        self._host = host
        self._cancelled = threading.Event()
        self._running: dict[Any, subprocess.Popen | None] = {}  # jobid -> its own process
        self._running_lock = threading.Lock()
        self._sampler = Sampler()
        self._used: dict[Any, Usage] = {}  # jobid -> what the finished job used
        self._in_groups: set[Any] = set()  # jobids of pipe-group members running
        self._doomed: set[Any] = set()  # jobids that must not start (their group failed)
        super().__init__(host.workflow, host.logger)

    def __post_init__(self) -> None:
        super().__post_init__()
        # Snakemake runs every job in-process under a remote executor; spawn run:
        # and shadow jobs as its local executor does (unless --force-use-threads).
        self.use_threads = compat.forced_threads()
        # Waiting jobs block a worker each; keep a few spare like Snakemake does.
        self.pool.shutdown(wait=False)
        self.workers = self.budget.total + 5
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="hybrid-local")

    # A job spawned from here is a local job: format it as Snakemake's local executor does.
    @property
    def common_settings(self) -> Any:
        return compat.local_common_settings()

    @property
    def cores(self) -> int:
        return self.budget.total

    def get_job_args(self, job: Any, **kwargs: Any) -> str:
        # a spawned job runs with the threads this process gave it (its rule's
        # threads within --cores), whatever the budget lets run at once
        kwargs.setdefault("cores", max(1, int(job.threads)))
        return super().get_job_args(job, **kwargs)

    # -- single jobs -------------------------------------------------------------

    def cached_or_run(self, job: Any, run_func: Callable[..., Any], *args: Any) -> None:
        # a member of a pipe group runs on the cores its group holds
        threads = 0 if job.jobid in self._in_groups else job.threads
        with self.budget.hold(threads) as cores, self._tracked(job.jobid):
            self.logger.debug(
                f"local: job {job.jobid} runs with {cores} of {self.budget.total} cores"
            )
            super().cached_or_run(job, run_func, *args)

    def spawn_job(self, job: Any) -> None:
        """A ``run:`` or shadow job in a process of its own (tracked for cancel)."""
        command = self.format_job_exec(job)
        self.logger.debug(f"local: spawned job {job.jobid}: {command}")
        if self._start(job.jobid, command).wait() != 0:
            raise compat.spawned_job_error()

    # -- group jobs ----------------------------------------------------------------

    def run_job(self, job: JobExecutorInterface) -> None:
        if not job.is_group() or compat.is_pipe_group(job):
            super().run_job(job)  # a pipe or service group: in-process, as Snakemake does
            return
        job_info = SubmittedJobInfo(job=job)
        future = self.pool.submit(self._run_group, job)
        future.add_done_callback(partial(self._group_done, job_info))
        self.report_job_submission(job_info)

    def run_group_job(self, job: Any) -> None:
        """A pipe or service group, its members at once in this process (Snakemake's
        local executor), holding the cores of the whole group."""
        members = {member.jobid for member in job.jobs}
        with self.budget.hold(self._host.group_cores(job)):
            self._in_groups.update(members)
            try:
                super().run_group_job(job)
            except BaseException:
                # Snakemake kills the members' shells when one fails, but a member that
                # had not started its shell yet would start it and block on its pipe
                # for ever (a reader of a FIFO whose writer is gone): stop those too.
                self._stop(members)
                raise
            finally:
                self._in_groups.difference_update(members)

    def _run_group(self, job: JobExecutorInterface) -> None:
        cores = self._host.group_cores(job)
        with self.budget.hold(cores), self._tracked(job.jobid):
            command = self._host.format_job_exec(job)
            self.logger.debug(f"local: group job {job.jobid} ({cores} cores): {command}")
            returncode = self._start(job.jobid, command).wait()
        if returncode != 0:
            raise GroupJobFailed(f"inner Snakemake of group {job.name} exited {returncode}")

    def _group_done(self, job_info: SubmittedJobInfo, future: Future) -> None:
        if future.cancelled():
            self.report_job_error(job_info, msg="cancelled before it started")
            return
        error = future.exception()
        if error is None:
            self._host.outputs_stored(job_info.job)  # the group's Snakemake did
            self.report_job_success(job_info)
        else:
            self.report_job_error(job_info, msg=str(error))

    # -- processes and cancellation --------------------------------------------------

    @contextmanager
    def _tracked(self, jobid: Any) -> Iterator[None]:
        """Register a job's process for cancel, and measure what it uses."""
        with self._running_lock:
            if self._cancelled.is_set() or jobid in self._doomed:
                # what Snakemake's local executor treats as a job stopped on request
                raise KeyboardInterrupt(f"job {jobid}: cancelled before it started")
            self._running[jobid] = None
        self._sampler.start(jobid, partial(self._roots, jobid))
        try:
            yield
        finally:
            usage = self._sampler.stop(jobid)
            with self._running_lock:
                self._running.pop(jobid, None)
                if usage is not None:
                    self._used[jobid] = usage

    def _roots(self, jobid: Any) -> list[int]:
        """The job's own process (spawned and group jobs), else its running shell command."""
        with self._running_lock:
            process = self._running.get(jobid)
        process = process or compat.shell_process(jobid)
        return [process.pid] if process is not None else []

    def outcome(self, job_info: SubmittedJobInfo, state: JobState, msg: Any) -> Outcome:
        found = super().outcome(job_info, state, msg)
        with self._running_lock:
            usage = self._used.pop(job_info.job.jobid, None)
        return replace(found, usage=usage) if usage is not None else found

    def _start(self, jobid: Any, command: str) -> "JobProcess":
        """Start a job's own process; one started while cancelling is stopped at once."""
        process = JobProcess(command)
        with self._running_lock:
            self._running[jobid] = process
            cancelled = self._cancelled.is_set()
        if cancelled:
            terminate_tree(process.pid)
        return process

    def cancel(self) -> None:
        """Start nothing more, stop what runs, then wait for the workers."""
        self._cancelled.set()
        self._stop(None)
        self.pool.shutdown(wait=True, cancel_futures=True)

    def shutdown(self) -> None:
        # Snakemake is done with every job; a process still running is a leftover
        self._stop(None)
        super().shutdown()

    def _stop(self, jobids: set[Any] | None) -> None:
        """Stop the running jobs ``jobids`` (all: None) and keep them from starting.

        An in-process job may be between taking its cores and starting its shell
        command: keep looking for that command until the job ends (bounded).
        """
        with self._running_lock:
            self._doomed.update(jobids or ())
        deadline = time.monotonic() + CANCEL_GRACE_SECONDS
        stopped: set[int] = set()
        while True:
            with self._running_lock:
                running = {
                    jobid: process
                    for jobid, process in self._running.items()
                    if jobids is None or jobid in jobids
                }
            if not running or time.monotonic() > deadline:
                break
            for jobid, process in running.items():
                process = process or compat.shell_process(jobid)
                if process is not None and process.pid not in stopped:
                    terminate_tree(process.pid)
                    if isinstance(process, JobProcess):
                        with suppress(ProcessLookupError, PermissionError):
                            os.killpg(process.pid, signal.SIGTERM)
                    stopped.add(process.pid)
            time.sleep(0.05)


class GroupJobFailed(Exception):
    pass


class JobProcess(subprocess.Popen):
    """A job's own ``python -m snakemake`` in a process group of its own: what it
    leaves behind when it ends (e.g. a pipe reader blocked on a FIFO whose writer
    failed) is stopped with it."""

    def __init__(self, command: str) -> None:
        # Snakemake formats the inner invocation as one shell command line.
        super().__init__(["/bin/sh", "-c", command], start_new_session=True)

    def wait(self, timeout: float | None = None) -> int:
        code = super().wait(timeout)
        stop_group(self.pid, LEFTOVER_GRACE_SECONDS)  # its group: orphans of the job
        return code


def create(host: Host) -> LocalBackend:
    return LocalBackend(host)
