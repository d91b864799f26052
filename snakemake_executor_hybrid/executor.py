"""The ``hybrid`` executor: ask routing which backend takes a job, hand it over.

Backends report submission, success and failure to Snakemake themselves; this
class only routes, creates backends on first use (through the registry) and fans
out cancel/shutdown. It is also the backends' host (``backends.base.Host``): the
inner Snakemake call of a spawned job, the delegate plugins' settings, the
arguments that apply containers and learned requests in spawned jobs, and the
first look at every report (journal, failover; ``adaptive/``).
"""

import os
import sqlite3
import sys
import threading
from collections import defaultdict
from typing import Any

from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo
from snakemake_interface_executor_plugins.executors.real import RealExecutor
from snakemake_interface_executor_plugins.jobs import JobExecutorInterface
from snakemake_interface_executor_plugins.settings import ExecMode

from snakemake_human_gate.errors import GateError

from . import compat, routing
from .adaptive import journal
from .adaptive.failover import Failover
from .adaptive.tracker import Tracker
from .backends import BACKENDS
from .backends.base import Backend, Outcome
from .containers.plan import ContainerPlan
from .gates import GateWaiter, free_gated_rules
from .settings import ExecutorSettings, delegate_settings
from .stored import StoredOutputs

WALL_TIMES_KEPT = 50  # recent runs of a rule that say whether its jobs are short


def mixed_backends(group: str, choices: set[routing.Choice]) -> None:
    """Refuse a group whose rules would run on different backends (or chains)."""
    if len({c.chain for c in choices}) > 1:
        detail = "; ".join(sorted(f"{c.text} ({c.source})" for c in choices))
        raise WorkflowError(
            f"Group job '{group}' mixes backends: {detail}. All rules of a "
            "group run in one job; route them to the same backend."
        )


class Executor(RealExecutor):
    def __post_init__(self) -> None:
        compat.check()
        # None under the Python API when no settings object was given
        self.settings = self.workflow.executor_settings or ExecutorSettings()
        self.routes = routing.parse_routes(self.settings.routes)
        self.local_cores = (
            self.settings.local_cores or compat.local_cores(self.workflow) or os.cpu_count() or 1
        )
        self._backends: dict[str, Backend] = {}
        self._stored = StoredOutputs()
        self._plugin_settings: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._formatting = threading.local()  # the job whose command is being formatted
        self.tracker = Tracker(
            self.workflow, self.settings.history, self.logger, self._first_backend
        )
        self.failover = Failover(self._resubmit)
        self._journal_error_said = False
        gated = free_gated_rules(self.workflow)
        self._gates = GateWaiter(self, self.settings, gated) if gated else None
        self._containers = ContainerPlan(
            self.workflow,
            self.settings,
            self.logger,
            self._static_backend,
            {name: spec.capabilities for name, spec in BACKENDS.items()},
            skip=gated,
        )
        for warning in routing.unmatched(
            self.routes, (compat.rule_name(r) for r in compat.rules(self.workflow))
        ):
            self.logger.warning(warning)
        self._validate_planned_jobs()

    # -- routing ----------------------------------------------------------------

    def _resource_source(self, rule: str) -> str:
        if compat.is_overwritten(self.workflow, rule, routing.RESOURCE):
            return f"--set-resources {rule}:{routing.RESOURCE}=..."
        return f"resource '{routing.RESOURCE}' of rule '{rule}'"

    def _choose_one(self, rule: str, value: object) -> routing.Choice:
        return routing.choose(
            rule, value, self._resource_source(rule), self.routes, self.settings.default_backend
        )

    def choose(self, job: JobExecutorInterface) -> routing.Choice:
        """The backend of a ready job; every member of a group job must agree."""
        members = list(job.jobs) if job.is_group() else [job]
        values = {m.rule.name: m.resources.get(routing.RESOURCE) for m in members}
        if any(compat.is_tbd(value) for value in values.values()):
            raise WorkflowError(
                f"Rule '{job.name}': resource '{routing.RESOURCE}' is still "
                "undetermined at dispatch (it depends on input that is missing)."
            )
        choices = {self._choose_one(rule, value) for rule, value in values.items()}
        mixed_backends(job.name, choices)
        choice = choices.pop()
        routing.check_available(choice, job.name)
        return choice

    def _planned_choice(self, job: Any) -> routing.Choice | None:
        """The backend of a planned (not yet ready) single job, evaluating only its
        ``executor`` resource; None while that depends on what is not there yet."""
        try:
            value = compat.job_resource(job, routing.RESOURCE)
        except Exception:  # noqa: BLE001 - a function of missing input: check at dispatch
            return None
        if compat.is_tbd(value):
            return None
        choice = self._choose_one(job.rule.name, value)
        routing.check_available(choice, job.rule.name)
        return choice

    def _static_backend(self, rule: Any) -> str | None:
        """The one backend of every job of ``rule``; None if it depends on the job (or
        on failover: a chain)."""
        if compat.is_localrule(self.workflow, rule):
            return "local"  # Snakemake runs localrules itself
        known, value = compat.static_resource(rule, routing.RESOURCE)
        if not known:
            return None
        choice = self._choose_one(rule.name, value)
        return choice.backend if len(choice.chain) == 1 else None

    def _first_backend(self, rule_name: str) -> str | None:
        """Where jobs of the rule named so go first, if that is fixed (learned() prefers
        the runs there)."""
        for rule in compat.rules(self.workflow):
            if compat.rule_name(rule) == rule_name:
                known, value = compat.static_resource(rule, routing.RESOURCE)
                try:
                    return self._choose_one(rule_name, value).backend if known else None
                except WorkflowError:
                    return None  # reported where the job is dispatched
        return None

    def _validate_planned_jobs(self) -> None:
        """Fail at start-up on a bad route or container of any rule this run will
        execute, and on a group whose rules would run on different backends."""
        seen: set[str] = set()
        groups: dict[str, set[routing.Choice]] = defaultdict(set)
        for job in compat.needrun_jobs(self.workflow):
            if self._is_gate(job):
                continue
            self._containers.check(job.rule.name)
            if job.is_local or job.rule.name in seen:
                continue
            seen.add(job.rule.name)
            choice = self._planned_choice(job)
            if choice is None:
                continue  # checked at dispatch, once input exists
            for name in choice.chain:
                self.backend(name)
            group = compat.rule_group(job.rule)
            if group is not None:
                groups[group].add(choice)
        for group, choices in groups.items():
            mixed_backends(group, choices)

    def _is_gate(self, job: JobExecutorInterface) -> bool:
        return self._gates is not None and self._gates.owns(job)

    def backend(self, name: str) -> Backend:
        with self._lock:
            if name not in self._backends:
                self._backends[name] = BACKENDS[name].create(self)
            return self._backends[name]

    # -- what backends ask of their host ------------------------------------------

    def plugin_settings(self, backend: str) -> Any:
        if backend not in self._plugin_settings:
            self._plugin_settings[backend] = delegate_settings(self.settings, backend, self.logger)
        return self._plugin_settings[backend]

    def container_args(self) -> str:
        """``--set-resources`` giving container rules their launcher in a spawned Snakemake."""
        return self.spawn_args(None)

    def spawn_args(self, job: JobExecutorInterface | None, containers: bool = True) -> str:
        """``--set-resources`` of the Snakemake spawned for ``job``: container launchers
        and the job's learned requests (which that Snakemake must not evaluate again)."""
        launchers = self._containers.shell_exec() if containers else {}
        extra: dict[str, dict[str, str | int]] = {
            rule: dict(res) for rule, res in launchers.items()
        }
        if job is not None:
            for rule, values in self.tracker.spawn_resources(job).items():
                extra.setdefault(rule, {}).update(values)
        return compat.set_resources_arg(self.workflow, extra)

    def wall_times(self, backend: str, rule: str) -> list[float]:
        try:
            records = journal.read(
                self.tracker.path,
                "rule = ? AND backend = ? AND state = 'succeeded' AND used_wall_s IS NOT NULL",
                (rule, backend),
            )
        except sqlite3.Error:
            return []
        return [r.used_wall_s for r in records[-WALL_TIMES_KEPT:] if r.used_wall_s is not None]

    def job_submitted(self, backend: str, job_info: SubmittedJobInfo) -> None:
        try:
            self.tracker.submitted(job_info.job, job_info.external_jobid)
        except Exception as e:  # noqa: BLE001 - the journal never keeps a job from running
            self._journal_error(e)

    def job_ended(
        self, backend: str, job_info: SubmittedJobInfo, outcome: Outcome, msg: Any = None
    ) -> bool:
        job = job_info.job
        after = self.failover.next_backend(job, backend, outcome)
        try:
            self.tracker.ended(backend, job, job_info.external_jobid, outcome, after)
        except Exception as e:  # noqa: BLE001 - nor from being reported
            self._journal_error(e)
        if after is None:
            return False
        self.logger.warning(
            f"hybrid: job {job.jobid} ({job.name}) fails over from {backend} to {after}: "
            f"{outcome.reason or outcome.state.value}"
        )
        self.failover.move(job, after)
        return True

    def _journal_error(self, error: Exception) -> None:
        if not self._journal_error_said:
            self._journal_error_said = True
            self.logger.warning(f"hybrid: a job could not be journalled: {error!r}")

    def _resubmit(self, backend: str, job: JobExecutorInterface) -> None:
        try:
            self.backend(backend).run_jobs([job])
        except Exception as e:  # noqa: BLE001 - the job fails, the run goes on
            self.report_job_error(SubmittedJobInfo(job), msg=f"failover to {backend} failed: {e}")

    def group_cores(self, job: JobExecutorInterface) -> int:
        """Cores of a group job's inner Snakemake: what its members need at once
        (Snakemake sums the threads of jobs that must run together, e.g. a pipe group)."""
        return max(1, int(job.resources.get("_cores", 1)))

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
            except WorkflowError as e:
                self.report_job_error(SubmittedJobInfo(job), msg=str(e))
                continue
            chain = f" (then {'/'.join(choice.chain[1:])})" if len(choice.chain) > 1 else ""
            self.logger.info(
                f"hybrid: job {job.jobid} ({job.name}) -> {choice.backend}{chain} [{choice.source}]"
            )
            for line in self.tracker.dispatched(job):
                self.logger.info(line)
            self.failover.placed(job, choice)
            by_backend[choice.backend].append(job)
        for name, backend_jobs in by_backend.items():
            self.backend(name).run_jobs(backend_jobs)

    def outputs_stored(self, job: JobExecutorInterface) -> None:
        try:
            self._stored.hold(job)
        except Exception as e:  # noqa: BLE001 - the job's report must go out regardless
            self.logger.warning(f"hybrid: outputs of job {job.jobid} will be uploaded again: {e}")

    def handle_job_success(self, job: JobExecutorInterface) -> None:
        self._stored.release(job)  # Snakemake has checked them in storage

    def handle_job_error(self, job: JobExecutorInterface) -> None:
        self._stored.release(job)

    def run_job(self, job: JobExecutorInterface) -> None:
        self.run_jobs([job])

    def print_job_error(self, job_info: SubmittedJobInfo, msg: Any = None, **kwargs: Any) -> None:
        job = job_info.job
        if not self._is_gate(job):
            super().print_job_error(job_info, msg, **kwargs)
            return
        # A gate runs no command: report the decision without the (unused) shell line.
        info = compat.job_error_info(job, msg, **kwargs)
        info["shellcmd"] = None
        compat.log_error(f"Error in rule {job.rule.name}, jobid: {job.jobid}", info)

    def get_job_args(self, job: JobExecutorInterface, **kwargs: Any) -> str:
        kwargs.setdefault("cores", self.group_cores(job))
        return super().get_job_args(job, **kwargs)

    def format_job_exec(self, job: JobExecutorInterface) -> str:
        self._formatting.job = job
        try:
            return super().format_job_exec(job)
        finally:
            self._formatting.job = None

    def additional_general_args(self) -> str:
        return self.spawn_args(getattr(self._formatting, "job", None))

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
        self.failover.stop()
        # Remote jobs first: they cost allocations and outlive this process.
        for backend in sorted(self._started(), key=lambda b: b.name == "local"):
            backend.cancel()
        self.tracker.close()

    def shutdown(self) -> None:
        if self._gates is not None:
            self._gates.stop()  # pending gates stay in the store for the next run
        self.failover.stop()
        for backend in self._started():
            backend.shutdown()
        self.tracker.close()

    def _started(self) -> list[Backend]:
        with self._lock:
            return list(self._backends.values())
