"""The ``hybrid`` executor: ask routing which backend takes a job, hand it over.

Backends report submission, success and failure to Snakemake themselves; this
class only routes, creates backends on first use and fans out cancel/shutdown.
"""

import os
import sys
import threading
from collections import defaultdict
from typing import Any

from snakemake.common.tbdstring import TBDString
from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo
from snakemake_interface_executor_plugins.executors.real import RealExecutor
from snakemake_interface_executor_plugins.jobs import JobExecutorInterface
from snakemake_interface_executor_plugins.settings import ExecMode

from snakemake_human_gate.errors import GateError

from . import routing
from .backends import BACKENDS
from .containers.plan import ContainerPlan
from .gates import GateWaiter, free_gated_rules


class Executor(RealExecutor):
    def __post_init__(self) -> None:
        self.settings = self.workflow.executor_settings  # validated when built
        self.routes = routing.parse_routes(self.settings.routes)
        self.local_cores = (
            self.settings.local_cores
            or self.workflow.resource_settings.local_cores
            or os.cpu_count()
            or 1
        )
        self._backends: dict[str, Any] = {}
        self._lock = threading.Lock()
        gated = free_gated_rules(self.workflow)
        self._gates = GateWaiter(self, self.settings, gated) if gated else None
        self._containers = ContainerPlan(
            self.workflow,
            self.settings,
            self.logger,
            self._static_backend,
            tuple(BACKENDS),
            skip=gated,
        )
        self._validate_planned_jobs()

    # -- routing ----------------------------------------------------------------

    def _resource_source(self, rule: str) -> str:
        overwritten = self.workflow.resource_settings.overwrite_resources or {}
        if routing.RESOURCE in overwritten.get(rule, {}):
            return f"--set-resources {rule}:{routing.RESOURCE}=..."
        return f"resource '{routing.RESOURCE}' of rule '{rule}'"

    def choose(self, job: JobExecutorInterface) -> routing.Choice | None:
        """The backend of a job; every member of a group job must agree.

        None while an ``executor`` resource still depends on missing input.
        """
        members = list(job.jobs) if job.is_group() else [job]
        if any(isinstance(m.resources.get(routing.RESOURCE), TBDString) for m in members):
            return None
        choices = {
            routing.choose(
                member.rule.name,
                member.resources.get(routing.RESOURCE),
                self._resource_source(member.rule.name),
                self.routes,
                self.settings.default_backend,
            )
            for member in members
        }
        backends = {c.backend for c in choices}
        if len(backends) > 1:
            detail = "; ".join(sorted(f"{c.backend} ({c.source})" for c in choices))
            raise WorkflowError(
                f"Group job '{job.name}' mixes backends: {detail}. All rules of a "
                "group run in one job; route them to the same backend."
            )
        choice = choices.pop()
        routing.check_available(choice, job.name)
        return choice

    def _static_backend(self, rule: Any) -> str | None:
        """The backend of every job of ``rule``; None if it depends on the job."""
        if self.workflow.is_local(rule):
            return "local"  # Snakemake runs localrules itself
        res = rule.resources.get(routing.RESOURCE)
        if res is not None and res.is_evaluable():
            return None
        return routing.choose(
            rule.name,
            None if res is None else res.value,
            self._resource_source(rule.name),
            self.routes,
            self.settings.default_backend,
        ).backend

    def _validate_planned_jobs(self) -> None:
        """Fail at start-up on a bad route or container of any rule this run will execute."""
        seen: set[str] = set()
        for job in self.workflow.dag.needrun_jobs():
            if self._is_gate(job):
                continue
            self._containers.check(job.rule.name)
            if job.is_local or job.rule.name in seen:
                continue
            seen.add(job.rule.name)
            choice = self.choose(job)
            if choice is not None:  # else checked at dispatch, once input exists
                self.backend(choice.backend)

    def _is_gate(self, job: JobExecutorInterface) -> bool:
        return self._gates is not None and self._gates.owns(job)

    def backend(self, name: str) -> Any:
        with self._lock:
            if name not in self._backends:
                self._backends[name] = (
                    BACKENDS[name].load().create(self.workflow, self.logger, self)
                )
            return self._backends[name]

    # -- Snakemake executor interface -----------------------------------------

    def run_jobs(self, jobs: list[JobExecutorInterface]) -> None:
        by_backend: dict[str, list[JobExecutorInterface]] = defaultdict(list)
        for job in jobs:
            if self._gates is not None and self._gates.owns(job):
                self.run_job_pre(job)
                try:
                    self._gates.submit(job)
                except (GateError, OSError) as e:
                    self.report_job_error(SubmittedJobInfo(job), msg=f"gate not asked: {e}")
                continue
            try:
                for member in job.jobs if job.is_group() else [job]:
                    self._containers.check(member.rule.name)
                choice = self.choose(job)
                if choice is None:
                    raise WorkflowError(
                        f"Rule '{job.name}': resource '{routing.RESOURCE}' is still "
                        "undetermined at dispatch (it depends on input that is missing)."
                    )
            except WorkflowError as e:
                self.report_job_error(SubmittedJobInfo(job), msg=str(e))
                continue
            self.logger.info(
                f"hybrid: job {job.jobid} ({job.name}) -> {choice.backend} [{choice.source}]"
            )
            by_backend[choice.backend].append(job)
        for name, backend_jobs in by_backend.items():
            self.backend(name).run_jobs(backend_jobs)

    def run_job(self, job: JobExecutorInterface) -> None:
        self.run_jobs([job])

    def print_job_error(self, job_info: SubmittedJobInfo, msg: Any = None, **kwargs: Any) -> None:
        job = job_info.job
        if not self._is_gate(job):
            super().print_job_error(job_info, msg, **kwargs)
            return
        # A gate runs no command: report the decision without the (unused) shell line.
        from snakemake.logging import logger

        info = job.get_log_error_info(msg, **kwargs)
        info["shellcmd"] = None
        logger.error(f"Error in rule {job.rule.name}, jobid: {job.jobid}", extra=info)

    def group_cores(self, job: JobExecutorInterface) -> int:
        """Cores a local group job holds (and passes to its inner Snakemake)."""
        return max(1, min(int(job.resources.get("_cores", 1)), self.local_cores))

    def get_job_args(self, job: JobExecutorInterface, **kwargs: Any) -> str:
        kwargs.setdefault("cores", self.group_cores(job))
        return super().get_job_args(job, **kwargs)

    @property
    def cores(self) -> int:
        return self.local_cores

    def get_exec_mode(self) -> ExecMode:
        return ExecMode.REMOTE

    def get_python_executable(self) -> str:
        return sys.executable

    def cancel(self) -> None:
        if self._gates is not None:
            self._gates.stop()
        # Remote jobs first: they cost allocations and outlive this process.
        for backend in sorted(self._started(), key=lambda b: b.name == "local"):
            backend.cancel()

    def shutdown(self) -> None:
        if self._gates is not None:
            self._gates.stop()  # pending gates stay in the store for the next run
        for backend in self._started():
            backend.shutdown()

    def _started(self) -> list[Any]:
        with self._lock:
            return list(self._backends.values())
