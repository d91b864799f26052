"""The ``local`` backend: run jobs on the submitting machine.

Single jobs run exactly as under Snakemake's own local executor (it is reused
here), but only while their threads fit in the backend's own core budget;
Snakemake does not enforce ``--local-cores`` for remote executors. Group jobs
run as one inner ``python -m snakemake`` process, as a cluster would run them,
so that jobs depending on each other inside a group run in order.
"""

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from functools import partial
from typing import Any

from snakemake.executors.local import Executor as SnakemakeLocalExecutor
from snakemake.shell import shell
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo
from snakemake_interface_executor_plugins.jobs import JobExecutorInterface


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

    @property
    def free(self) -> int:
        with self._cond:
            return self._free

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


def descendants(pid: int) -> list[int]:
    """All processes below ``pid``, read from /proc (empty where there is none)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # the command name (field 2) may hold spaces: split after ')'
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def terminate_tree(pid: int) -> None:
    """SIGTERM a job's process and everything it started (a shell's children
    would otherwise outlive it)."""
    for target in [*descendants(pid), pid]:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(target, signal.SIGTERM)


class LocalBackend(SnakemakeLocalExecutor):
    name = "local"
    pool: ThreadPoolExecutor

    def __init__(
        self,
        workflow: Any,
        logger: Any,
        cores: int,
        hybrid: Any,
    ) -> None:
        self.budget = CoreBudget(cores)
        self._hybrid = hybrid  # formats the inner Snakemake call of group jobs
        self._cancelled = threading.Event()
        self._running: dict[Any, subprocess.Popen | None] = {}  # jobid -> group process
        self._running_lock = threading.Lock()
        super().__init__(workflow, logger)

    def __post_init__(self) -> None:
        super().__post_init__()
        # Waiting jobs block a worker each; keep a few spare like Snakemake does.
        self.pool.shutdown(wait=False)
        self.workers = self.budget.total + 5
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="hybrid-local")

    @property
    def cores(self) -> int:
        return self.budget.total

    def cached_or_run(self, job: Any, run_func: Callable[..., Any], *args: Any) -> None:
        with self.budget.hold(job.threads) as cores, self._tracked(job.jobid):
            self.logger.debug(
                f"local: job {job.jobid} runs in-process with {cores} of {self.budget.total} cores"
            )
            super().cached_or_run(job, run_func, *args)

    @contextmanager
    def _tracked(self, jobid: Any) -> Iterator[None]:
        with self._running_lock:
            if self._cancelled.is_set():
                raise KeyboardInterrupt  # cancelled while waiting for cores
            self._running[jobid] = None
        try:
            yield
        finally:
            with self._running_lock:
                self._running.pop(jobid, None)

    def cancel(self) -> None:
        """Start nothing more, stop what runs, then wait for the workers."""
        with self._running_lock:
            self._cancelled.set()
            running = dict(self._running)
        for jobid, process in running.items():
            if process is None:  # an in-process job: its shell command, if any
                process = getattr(shell, "_processes", {}).get(jobid)
            if process is not None:
                terminate_tree(process.pid)
        self.pool.shutdown(wait=True, cancel_futures=True)

    def run_job(self, job: JobExecutorInterface) -> None:
        if not job.is_group():
            super().run_job(job)
            return
        job_info = SubmittedJobInfo(job=job)
        future = self.pool.submit(self._run_group, job)
        future.add_done_callback(partial(self._group_done, job_info))
        self.report_job_submission(job_info)

    def _run_group(self, job: JobExecutorInterface) -> None:
        with self.budget.hold(self._hybrid.group_cores(job)), self._tracked(job.jobid):
            command = self._hybrid.format_job_exec(job)
            self.logger.debug(f"local: group job {job.jobid} command: {command}")
            # Snakemake formats the inner invocation as one shell command line.
            process = subprocess.Popen(["/bin/sh", "-c", command])
            with self._running_lock:
                self._running[job.jobid] = process
                cancelled = self._cancelled.is_set()
            if cancelled:
                terminate_tree(process.pid)
            returncode = process.wait()
        if returncode != 0:
            raise GroupJobFailed(f"inner Snakemake of group {job.name} exited {returncode}")

    def _group_done(self, job_info: SubmittedJobInfo, future: Future) -> None:
        error = future.exception()
        if error is None:
            self.report_job_success(job_info)
        else:
            self.report_job_error(job_info, msg=str(error))


class GroupJobFailed(Exception):
    pass


def create(workflow: Any, logger: Any, hybrid: Any) -> LocalBackend:
    return LocalBackend(workflow, logger, hybrid.local_cores, hybrid)
