"""Human-gated jobs under the hybrid executor: asked at once, waited for for free.

A gated job never runs a command and takes no backend: it is registered in the
gate store and reported submitted; one thread watches the store and, when the
decision stands, writes it to the job's output (or fails the job on a ``fail_on``
choice). Gated rules get ``_nodes=0`` and ``_cores=0`` so that a waiting gate holds
no ``--jobs`` slot and no core.
"""

import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo

from snakemake_human_gate.announce import Announcer
from snakemake_human_gate.api import find_gate
from snakemake_human_gate.errors import GateError
from snakemake_human_gate.outcome import settle
from snakemake_human_gate.store import GateStore, resolve_dir

from . import compat

# Stable for this long with only gates left -> --hybrid-exit-when-waiting exits.
QUIET_SECONDS = 1.0


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


@dataclass
class Waiting:
    """A gate job the watcher looks after, and what it last saw of its record."""

    job_info: SubmittedJobInfo
    version: tuple[int, int] = (-1, -1)  # the gate's, when last looked at
    deadline: float = math.inf


class GateWaiter:
    def __init__(self, executor: Any, settings: Any, gated_rules: frozenset[str]) -> None:
        self.gated_rules = gated_rules
        self._executor = executor
        self._logger = executor.logger
        self.store = GateStore(resolve_dir(settings.gate_dir), share=settings.gate_share)
        self._poll = settings.gate_poll_interval
        self._exit_when_waiting = settings.exit_when_waiting
        self._waiting: dict[str, Waiting] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.announcer = self._announcer(executor.workflow, settings)
        self._thread = threading.Thread(target=self._watch, name="hybrid-gates", daemon=True)
        self._thread.start()

    def _announcer(self, workflow: Any, settings: Any) -> Announcer:
        """Notifications, checked at start-up for every gated rule (unset variables,
        email without an SMTP server, ...)."""
        try:
            announcer = Announcer(self.store, targets=settings.gate_notify, url=settings.gate_url)
        except GateError as e:
            raise WorkflowError(f"Gate notifications: {e}") from None
        for rule in compat.rules(workflow):
            spec = find_gate(compat.rule_params(rule)) if rule.name in self.gated_rules else None
            if spec is not None:
                try:
                    announcer.targets(spec)
                except GateError as e:
                    raise WorkflowError(f"Rule '{rule.name}': gate notifications: {e}") from None
        return announcer

    # -- dispatch -------------------------------------------------------------------

    def owns(self, job: Any) -> bool:
        """Whether ``job`` is a gate (gated rules cannot be in groups)."""
        return not job.is_group() and job.rule.name in self.gated_rules

    def submit(self, job: Any) -> None:
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
        job_info = SubmittedJobInfo(job, external_jobid=record.id)
        self._executor.report_job_submission(job_info)
        if new:
            self.announcer.announce(record)
        if record.decision is None:
            self._logger.info(
                f"gate {record.id} {'asks' if new else 'is still waiting'}: "
                f"{record.spec.question}\n    decide with: snakemake-gate "
                f"--dir {self.store.root} show {record.id}"
            )
        with self._lock:
            self._waiting[record.id] = Waiting(job_info)

    # -- watching --------------------------------------------------------------------

    def _watch(self) -> None:
        quiet_since: float | None = None
        while not self._stop.wait(self._poll):
            with self._lock:
                waiting = dict(self._waiting)
            for gid, waiting_job in waiting.items():
                try:
                    self._check(gid, waiting_job)
                except Exception as e:  # one broken gate must not stop the others
                    self._logger.error(f"gate {gid}: {e}")
            if self._exit_when_waiting:
                quiet_since = self._maybe_exit(quiet_since)

    def _check(self, gid: str, waiting: "Waiting") -> None:
        """Settle the gate if its record changed to decided or its deadline passed."""
        try:
            version = self.store.version(gid)
        except FileNotFoundError:  # reset meanwhile: ask again
            with self._lock:
                self._waiting.pop(gid, None)
            self._logger.info(f"gate {gid} was reset; asking again")
            self.submit(waiting.job_info.job)
            return
        if version == waiting.version and time.time() < waiting.deadline:
            return  # unchanged since the last look
        record = self.store.current(gid)
        if record.decision is None:
            waiting.version = version
            if record.spec.timeout is not None:
                waiting.deadline = record.created + record.spec.timeout
            return
        with self._lock:
            self._waiting.pop(gid, None)
        self.announcer.announce(record)
        failure = settle(record)
        if failure:
            self._executor.report_job_error(waiting.job_info, msg=failure)
        else:
            d = record.decision
            self._logger.info(f"gate {gid}: {d.choice} by {', '.join(d.by)}")
            self._executor.report_job_success(waiting.job_info)

    def _maybe_exit(self, quiet_since: float | None) -> float | None:
        with self._lock:
            gate_jobs = {w.job_info.job for w in self._waiting.values()}
        try:  # the scheduler's sets change under us: look again next time
            running, open_jobs = compat.scheduler_jobs(self._executor.workflow)
        except RuntimeError:
            return None
        ready = open_jobs - running
        if not gate_jobs or running - gate_jobs or ready:
            return None
        now = time.monotonic()
        if quiet_since is None or now - quiet_since < QUIET_SECONDS:
            return quiet_since if quiet_since is not None else now
        self._exit_now()
        return None

    def _exit_now(self) -> None:
        with self._lock:
            pending = [self.store.get(gid) for gid in self._waiting]
        lines = [f"Every remaining job waits on a human ({len(pending)} gate(s)); exiting."]
        for record in pending:
            who = ", ".join(record.spec.approvers) if record.spec.approvers else "anyone"
            lines.append(f"  {record.id}: {record.spec.question} (decides: {who})")
        lines.append(
            f"Decide with 'snakemake-gate --dir {self.store.root} list', then rerun "
            "Snakemake: decided gates are not asked again."
        )
        self._logger.info("\n".join(lines))
        for record in pending:
            job = self._waiting[record.id].job_info.job
            compat.release_job(self._executor.workflow, job)
        compat.unlock(self._executor.workflow)
        self.announcer.close(timeout=10)  # the news of these gates must still go out
        logging.shutdown()
        os._exit(0)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self.announcer.close(timeout=5)
