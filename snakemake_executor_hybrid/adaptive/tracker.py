"""The executor's side of adaptive execution: journal rows from the backends' reports.

The executor tells the tracker when it dispatches a job, when a backend has
submitted it and how it ended; the tracker turns that into one journal row per
attempt (and per backend tried), tells the advisor (so that a retry sees why
its previous attempt failed), and hands the learned requests of a job to the
Snakemake a backend spawns for it.
"""

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snakemake_interface_common.exceptions import WorkflowError

from .. import compat
from ..backends.base import Outcome
from . import learned as learned_module
from .advisor import LEARNABLE, Advisor, input_bytes
from .journal import DEFAULT_PATH, Journal, Record

FAILED_OVER = "failed_over"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class Attempt:
    """What is known of a job between its dispatch and its end."""

    input_bytes: int
    learned: dict[str, Any]
    external_id: str | None = None
    submitted: float = field(default_factory=time.time)


class Tracker:
    def __init__(self, workflow: Any, history: str | None, logger: Any, backend_of: Any) -> None:
        self.path = Path(history) if history else DEFAULT_PATH
        self.run_id = str(uuid.uuid4())
        self._logger = logger
        self.journal = Journal(self.path, logger)
        self.advisor = Advisor(self.path, logger, backend_of)
        self._bound: dict[str, list[str]] = {}  # rule -> its learned resources
        self._attempts: dict[int, Attempt] = {}  # id(job) -> attempt in flight
        for rule in compat.rules(workflow):
            self._bind(rule)
        learned_module.install(self.advisor)

    def _bind(self, rule: Any) -> None:
        name = compat.rule_name(rule)
        seen: dict[int, str] = {}
        for resource, evaluator in compat.resource_evaluators(rule).items():
            found = learned_module.find(evaluator)
            if found is None:
                continue
            if resource not in LEARNABLE:
                raise WorkflowError(
                    f"Rule '{name}': resource '{resource}' is learned(), but only "
                    f"{' and '.join(LEARNABLE)} (also written mem or mem_mib) can be "
                    "learned from past runs. Give it a value or a function instead."
                )
            if id(found) in seen:
                raise WorkflowError(
                    f"Rule '{name}': resources '{seen[id(found)]}' and '{resource}' share "
                    "one learned(...) object; call learned() once for each resource."
                )
            seen[id(found)] = resource
            self.advisor.bind(name, resource, found)
            self._bound.setdefault(name, []).append(resource)

    def close(self) -> None:
        learned_module.install(None)
        self.journal.close()

    # -- a job's life -----------------------------------------------------------------

    def dispatched(self, job: Any) -> list[str]:
        """Remember a job handed to a backend; the log lines saying what it asks and why."""
        lines, learned = [], {}
        for member in _members(job):
            rule = compat.job_rule_name(member)
            if rule not in self._bound:
                continue
            decisions = self.advisor.decisions(rule, compat.job_wildcards(member), member.attempt)
            if not decisions:
                continue
            if not job.is_group():
                learned = {name: d.as_json() for name, d in decisions.items()}
            what = "; ".join(d.why for d in decisions.values())
            lines.append(f"hybrid: job {member.jobid} ({rule}): {what}")
        self._attempts[id(job)] = Attempt(input_bytes(job.input), learned)
        return lines

    def submitted(self, job: Any, external_id: str | None) -> None:
        attempt = self._attempts.get(id(job))
        if attempt is not None:
            attempt.external_id = external_id
            attempt.submitted = time.time()

    def ended(
        self, backend: str, job: Any, external_id: str | None, outcome: Outcome,
        failed_over_to: str | None = None,
    ) -> Record:  # fmt: skip
        """Journal the end of a job's attempt on ``backend``."""
        attempt = (
            self._attempts.get(id(job)) if failed_over_to else self._attempts.pop(id(job), None)
        )
        attempt = attempt or Attempt(0, {})
        resources = job.resources
        reason = outcome.reason
        if failed_over_to:
            reason = f"{reason or outcome.state.value}; failed over to {failed_over_to}"
        usage = outcome.usage
        record = Record(
            run_id=self.run_id,
            rule=f"group:{job.groupid}" if job.is_group() else compat.job_rule_name(job),
            wildcards={} if job.is_group() else compat.job_wildcards(job),
            backend=backend,
            attempt=int(job.attempt),
            state=FAILED_OVER if failed_over_to else outcome.state.value,
            input_bytes=attempt.input_bytes,
            external_id=external_id or attempt.external_id,
            req_threads=_int(job.threads),
            req_mem_mb=_int(resources.get("mem_mb")),
            req_runtime_min=_int(resources.get("runtime")),
            learned=attempt.learned or None,
            used_wall_s=usage.wall_s if usage else None,
            used_cpu_s=usage.cpu_s if usage else None,
            used_mem_mb=usage.mem_mb if usage else None,
            reason=reason,
            submitted=attempt.submitted,
        )
        self.advisor.observe(record)
        self.journal.record(record)
        if failed_over_to:  # the next backend's submission starts afresh
            attempt.external_id, attempt.submitted = None, time.time()
        return record

    def spawn_resources(self, job: Any) -> dict[str, dict[str, int]]:
        """``{rule: {resource: value}}`` of the learned resources of ``job``'s members,
        for the ``--set-resources`` of the Snakemake spawned to run it (a group with
        several jobs of one rule gets the largest value of that rule)."""
        values: dict[str, dict[str, int]] = {}
        for member in _members(job):
            rule = compat.job_rule_name(member)
            for name in self._bound.get(rule, ()):
                value = _int(member.resources.get(name))
                if value is not None:
                    mine = values.setdefault(rule, {})
                    mine[name] = max(value, mine.get(name, value))
        return values


def _members(job: Any) -> list[Any]:
    return list(job.jobs) if job.is_group() else [job]
