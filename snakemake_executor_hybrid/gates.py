"""Human-gated jobs under the hybrid executor: asked at once, waited for for free.

A gated job never runs a command and takes no backend: it is registered in the gate
store and reported submitted; one thread runs the gates' waiting loop
(``snakemake_human_gate.waiting``, shared with ``snakemake-gate await``) and, when the
decision stands, writes it to the job's output (or fails the job on a ``fail_on``
choice). Gated rules get ``_nodes=0`` and ``_cores=0`` so that a waiting gate holds no
``--jobs`` slot and no core.

At start-up, gate jobs whose output was marked for a rerun (the gate was reopened, or
ended rejected) are forced with everything downstream (``snakemake_human_gate.rerun``),
and decided gates whose definition changed since are reported. With
``--hybrid-exit-when-waiting``, once every remaining job waits for a person the run ends
through Snakemake's normal end and the process exits with :data:`EXIT_WAITING`.
"""

import threading
import time
from pathlib import Path
from typing import Any

from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo

from snakemake_human_gate.announce import Announcer
from snakemake_human_gate.api import find_gate
from snakemake_human_gate.errors import GateError
from snakemake_human_gate.groups import Groups
from snakemake_human_gate.news import News
from snakemake_human_gate.outcome import settle
from snakemake_human_gate.record import GateRecord
from snakemake_human_gate.rerun import clear, mark
from snakemake_human_gate.store import GateStore, resolve_dir
from snakemake_human_gate.waiting import Waiter

from . import compat, compat_scheduler
from .gate_startup import force_marked, report_redefined, summary

# Stable for this long with only gates left -> --hybrid-exit-when-waiting ends the run.
QUIET_SECONDS = 1.0
EXIT_WAITING = 75  # EX_TEMPFAIL: "try again later" -- the run stopped only because gates wait


def free_gated_rules(workflow: Any) -> frozenset[str]:
    """Make every gated rule hold no job slot and no core while it waits; their names."""
    names = set()
    for rule in compat.rules(workflow):
        if find_gate(compat.rule_params(rule)) is not None:
            group = compat.rule_group(rule)
            if group is not None:
                raise WorkflowError(
                    f"Rule '{rule.name}' is a gate but belongs to group '{group}': a "
                    "gate waits for a person and cannot share a job with other rules. "
                    "Remove it from the group."
                )
            compat.set_rule_resource(rule, "_nodes", 0)
            compat.set_rule_resource(rule, "_cores", 0)
            names.add(rule.name)
    return frozenset(names)


class GateWaiter:
    def __init__(self, executor: Any, settings: Any, gated_rules: frozenset[str]) -> None:
        self.gated_rules = gated_rules
        self._executor = executor
        self._workflow = executor.workflow
        self._logger = executor.logger
        compat_scheduler.check(self._workflow)
        self.store = GateStore(resolve_dir(settings.gate_dir), share=settings.gate_share)
        self._exit_when_waiting = settings.exit_when_waiting
        self._check_groups()
        self.announcer = self._announcer(settings)
        self.waiter = Waiter(
            self.store, News(self.store, self.announcer), settings.gate_poll_interval, self._error
        )
        self._jobs: dict[Any, SubmittedJobInfo] = {}  # gate jobs waiting, by job
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stopped_for_gates = False
        self._quiet_since: float | None = None
        jobs = compat_scheduler.gate_jobs(self._workflow, gated_rules)
        force_marked(self._workflow, self.store, jobs, self._logger)
        report_redefined(self.store, jobs, self._logger)
        self._thread = threading.Thread(target=self._watch, name="hybrid-gates", daemon=True)
        self._thread.start()

    def _specs(self) -> dict[str, Any]:
        """The gate definition of each gated rule."""
        found = {r.name: find_gate(compat.rule_params(r)) for r in compat.rules(self._workflow)}
        return {name: spec for name, spec in found.items() if name in self.gated_rules}

    def _check_groups(self) -> None:
        """Every @group a gated rule names exists (in the store's group file or the OS)."""
        groups = Groups(self.store.tree)
        for rule, spec in self._specs().items():
            names = [*(spec.approvers or ()), *(spec.escalate.deciders if spec.escalate else ())]
            try:
                unknown = groups.unknown(names)
            except GateError as e:
                raise WorkflowError(f"Rule '{rule}': approver groups: {e}") from None
            if unknown:
                raise WorkflowError(
                    f"Rule '{rule}': approver group {unknown[0]} is neither in the store's group "
                    f"file ({self.store.root}/keys/groups.json) nor an OS group: nobody could "
                    "decide as it. Define it ('snakemake-gate group set NAME USER...', the "
                    "store's owner) or correct the name."
                )

    def _announcer(self, settings: Any) -> Announcer:
        """Notifications, checked at start-up for every gated rule (unset variables,
        email without an SMTP server, ...)."""
        try:
            announcer = Announcer(self.store, targets=settings.gate_notify, url=settings.gate_url)
        except GateError as e:
            raise WorkflowError(f"Gate notifications: {e}") from None
        for rule, spec in self._specs().items():
            try:
                announcer.targets(spec)
                announcer.escalation_targets(spec)
            except GateError as e:
                raise WorkflowError(f"Rule '{rule}': gate notifications: {e}") from None
        return announcer

    def _error(self, text: str) -> None:
        self._logger.error(text)

    # -- dispatch -------------------------------------------------------------------

    def owns(self, job: Any) -> bool:
        """Whether ``job`` is a gate (gated rules cannot be in groups)."""
        return not job.is_group() and job.rule.name in self.gated_rules

    def _ask(self, job: Any) -> tuple[GateRecord, bool]:
        spec = find_gate(compat.rule_params(job))
        if spec is None:
            raise ValueError(f"job {job.jobid} of rule {job.rule.name} is not gated")
        record, new = self.store.ask(
            rule=job.rule.name,
            wildcards=compat.job_wildcards(job),
            inputs=list(job.input),
            output=job.output[0],
            spec=spec,
            via="snakemake",
        )
        if new:
            self.announcer.announce(record)
        if new and record.previous:
            changed = ", ".join(record.previous.get("changed", []))
            self._logger.warning(
                f"gate {record.id}: its definition changed ({changed}) while it waited: "
                "asked again under the new one; votes under the old one do not count"
            )
        elif not new and record.decision is not None and record.spec.changes(spec):
            self._logger.warning(
                f"gate {record.id} was decided under an earlier definition (changed: "
                f"{', '.join(record.spec.changes(spec))}); its decision stands. To ask again "
                f"under the new one: snakemake-gate --dir {self.store.root} reopen {record.id}"
            )
        return record, new

    def submit(self, job: Any) -> None:
        output = Path(job.output[0])
        output.unlink(missing_ok=True)  # a decision left by an earlier asking is not this one
        record, new = self._ask(job)
        job_info = SubmittedJobInfo(job, external_jobid=record.id)
        self._executor.report_job_submission(job_info)
        if record.decision is None:
            self._logger.info(
                f"gate {record.id} {'asks' if new else 'is still waiting'}: "
                f"{record.spec.question}\n    decide with: snakemake-gate "
                f"--dir {self.store.root} show {record.id}"
            )
        with self._lock:
            self._jobs[job] = job_info
        self.waiter.watch(record, lambda: self._ask(job)[0], lambda r: self._settle(job_info, r))

    def _settle(self, job_info: SubmittedJobInfo, record: GateRecord) -> None:
        """The decision stands: write it to the job's output, or fail the job."""
        with self._lock:
            self._jobs.pop(job_info.job, None)
        output = str(Path(job_info.job.output[0]).absolute())
        failure = settle(record, output)
        decision = record.decision
        assert decision is not None
        if failure:  # every later run asks again (and fails) until it is reopened
            why = f"{decision.choice} by {', '.join(decision.by)}"
            mark(self.store, output, record.id, why, time.time())
            self._executor.report_job_error(job_info, msg=failure)
            return
        clear(self.store, output, record.created)
        self._logger.info(f"gate {record.id}: {decision.choice} by {', '.join(decision.by)}")
        self._executor.report_job_success(job_info)

    # -- watching --------------------------------------------------------------------

    def _watch(self) -> None:
        self.waiter.run(self._stop, after=self._after_pass)

    def _after_pass(self) -> bool:
        """True ends the watcher: the run was ended because only gates are left."""
        return self._exit_when_waiting and self._maybe_stop()

    def _maybe_stop(self) -> bool:
        with self._lock:
            gate_jobs = set(self._jobs)
        try:  # the scheduler's sets change under us: look again next time
            running, open_jobs = compat_scheduler.scheduler_jobs(self._workflow)
        except RuntimeError:
            self._quiet_since = None
            return False
        if not gate_jobs or running - gate_jobs or open_jobs - running:
            self._quiet_since = None
            return False
        now = time.monotonic()
        if self._quiet_since is None or now - self._quiet_since < QUIET_SECONDS:
            self._quiet_since = self._quiet_since or now
            return False
        return self._stop_for_gates(gate_jobs)

    def _stop_for_gates(self, gate_jobs: set[Any]) -> bool:
        """End the run (Snakemake's own end: shutdown, storage, lock); exit 75 after it."""
        if not compat_scheduler.set_aside(self._workflow, gate_jobs):
            self._quiet_since = None
            return False
        records = [self.store.get(gid) for gid in self.waiter.watching()]
        # a job that failed (under --keep-going): Snakemake ends with status 1
        status = 1 if compat_scheduler.job_failed(self._workflow) else EXIT_WAITING
        self._logger.info(summary(records, self.store.root, status))
        for job in gate_jobs:
            compat_scheduler.release_job(self._workflow, job)
        self._stopped_for_gates = True
        compat_scheduler.on_success(self._workflow, self._exit)
        return True

    def _exit(self, logfile: Any) -> None:
        """Where Snakemake would run the Snakefile's onsuccess handler (not run: the
        workflow is not done): the exit status that says gates wait. Under the Python
        API the run just returns."""
        if compat.running_cli():
            raise SystemExit(EXIT_WAITING)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self.announcer.close(timeout=10 if self._stopped_for_gates else 5)
