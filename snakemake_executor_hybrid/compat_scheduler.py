"""Snakemake's scheduler and DAG as the gates need them, beyond the executor-plugin
interface (the rest of Snakemake's internals are in :mod:`.compat`).

- ending a run whose remaining jobs all wait for people (``--hybrid-exit-when-waiting``)
  through the scheduler's own normal end: the executor's ``shutdown`` in the main
  thread, storage outputs stored, the lock released;
- rerunning a gate job with everything downstream, as ``--forcerun FILE`` would, when
  its gate was reopened (``snakemake_human_gate.rerun``).

:func:`check` verifies at start-up that the installed Snakemake has what is used here.
"""

from collections.abc import Callable, Iterable
from typing import Any

from snakemake_interface_common.exceptions import WorkflowError

_SCHEDULER = ("running", "failed", "open_jobs", "remaining_jobs", "_lock", "_open_jobs")
_DAG = ("jobs", "forcefiles", "postprocess")


def check(workflow: Any) -> None:
    """Raise a WorkflowError naming what the installed Snakemake lacks."""
    from . import compat

    missing = [f"dag.{name}" for name in _DAG if not hasattr(workflow.dag, name)]
    for name in ("_onsuccess", "async_run", "persistence"):
        if not hasattr(workflow, name):
            missing.append(f"workflow.{name}")
    if missing:
        raise WorkflowError(
            f"Human gates under the hybrid executor need {compat.SUPPORTED}; this Snakemake "
            f"lacks {', '.join(missing)}."
        )


def scheduler_jobs(workflow: Any) -> tuple[set[Any], set[Any]]:
    """(running, open) jobs of the scheduler; raises RuntimeError while they change."""
    scheduler = workflow.scheduler
    return set(scheduler.running), set(scheduler.open_jobs)


def release_job(workflow: Any, job: Any) -> None:
    """Forget that ``job`` was started (its incomplete marker), as on a clean exit."""
    workflow.persistence.cleanup(job)


def set_aside(workflow: Any, waiting: Iterable[Any]) -> bool:
    """End the run as far as it went: the ``waiting`` jobs (running, for Snakemake) and
    every job still to run are set aside, and the scheduler ends at its next round as
    when all is done. False (nothing done) unless exactly ``waiting`` runs, nothing is
    ready and no result is being handled."""
    scheduler = workflow.scheduler
    waiting = set(waiting)
    missing = [name for name in _SCHEDULER if not hasattr(scheduler, name)]
    if missing:
        raise WorkflowError(f"Snakemake's scheduler lacks {', '.join(missing)}")
    with scheduler._lock:
        busy = getattr(scheduler, "_tofinish", None) or getattr(scheduler, "_toerror", None)
        if set(scheduler.running) != waiting or scheduler.open_jobs or busy:
            return False
        scheduler.running.clear()
        scheduler.failed.update(waiting, scheduler.remaining_jobs)
    scheduler._open_jobs.release()  # the scheduler's next round: nothing left, it ends
    return True


def job_failed(workflow: Any) -> bool:
    """Whether a job of the run failed (under ``--keep-going``): Snakemake then ends with
    status 1 (False where this Snakemake does not say)."""
    return bool(getattr(workflow.scheduler, "_errors", False))


def on_success(workflow: Any, hook: Callable[[Any], None]) -> None:
    """Run ``hook`` (with the log file) where Snakemake would run the Snakefile's
    ``onsuccess`` handler, instead of it: in the main thread, after the executor's
    shutdown, while Snakemake's lock is still held (released as ``hook`` returns or
    raises)."""
    workflow._onsuccess = hook


def gate_jobs(workflow: Any, rules: frozenset[str]) -> list[Any]:
    """The jobs of the DAG (to run or not) of the gated ``rules``."""
    return [job for job in workflow.dag.jobs if job.rule.name in rules]


def force_rerun(workflow: Any, jobs: Iterable[Any]) -> None:
    """Make ``jobs`` and every job downstream of them run, as ``--forcerun`` with their
    outputs would (the DAG's needrun is computed again)."""
    dag = workflow.dag
    dag.forcefiles.update(f for job in jobs for f in job.output)
    workflow.async_run(dag.postprocess(update_needrun=True))
