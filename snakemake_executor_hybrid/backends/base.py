"""The backend contract: what the executor asks of a backend, and what it offers one.

A backend is one small module with a ``create(host) -> Backend`` function and an
entry in the registry (``backends/__init__.py``). The executor routes each job
to a backend by name and hands it over with ``run_jobs``; the backend reports
submission, success and failure to Snakemake itself (through the reporting
methods of the Snakemake executor it is built on) and stops its jobs on
``cancel``.

Every report passes the host first (:class:`ReportsToHost`): the host journals
the job with what the backend knows of its end (an :class:`Outcome`: state,
reason, usage) and may take a job that could not run here to the next backend
of its failover chain instead of reporting the failure.
"""

import threading
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo
from snakemake_interface_executor_plugins.jobs import JobExecutorInterface

from ..states import JobState

OUTCOME = "hybrid_outcome"  # key of a job's Outcome in SubmittedJobInfo.aux


@dataclass(frozen=True)
class Capabilities:
    """What the rest of the executor needs to know about a backend."""

    # Jobs see this machine's working directory (no staging of files).
    shared_fs: bool = True
    # The backend runs a job's ``container:`` image itself (a cloud job *is* a
    # container); otherwise the executor wraps each shell command in a runtime.
    wraps_containers: bool = False
    # Container runtimes tried in order when neither the rule nor the settings
    # name one (empty: the backend runs no runtime of ours).
    container_runtimes: tuple[str, ...] = ()
    # Snakemake executor plugin whose settings (``--PLUGIN-*`` flags) apply.
    plugin: str | None = None


@dataclass(frozen=True)
class Usage:
    """What a job used, as far as its backend measures it (None: not known)."""

    wall_s: float | None = None
    cpu_s: float | None = None
    mem_mb: float | None = None  # peak resident memory


@dataclass(frozen=True)
class Outcome:
    """How a job ended, as its backend knows it."""

    state: JobState
    reason: str | None = None  # e.g. "memory: used 2011 MB of 2000 MB requested"
    usage: Usage | None = None
    # The job could not run here (never startable, refused, node or boot failure,
    # backend unreachable): its own command did not fail. Such a job may fail over.
    infrastructure: bool = False
    message: str | None = None  # what to tell the user instead of the backend's own message


def attach(job_info: SubmittedJobInfo, outcome: Outcome) -> SubmittedJobInfo:
    """Give a job's report its outcome (read by :class:`ReportsToHost`)."""
    job_info.aux = {**(job_info.aux or {}), OUTCOME: outcome}
    return job_info


@runtime_checkable
class Backend(Protocol):
    """A place jobs run: the local machine, a SLURM cluster, a cloud service."""

    name: str

    def run_jobs(self, jobs: list[JobExecutorInterface]) -> None:
        """Submit ``jobs`` (all routed here); report each to Snakemake."""

    def cancel(self) -> None:
        """Stop every job this backend started, and submit nothing more."""

    def shutdown(self) -> None:
        """Release what the backend holds once Snakemake is done."""


class Host(Protocol):
    """What a backend may use of the hybrid executor that created it."""

    workflow: Any  # Snakemake's workflow (WorkflowExecutorInterface and more)
    logger: Any
    settings: Any  # the hybrid's ExecutorSettings
    local_cores: int

    def format_job_exec(self, job: JobExecutorInterface) -> str:
        """The inner ``python -m snakemake`` call running ``job`` on a shared file system."""

    def group_cores(self, job: JobExecutorInterface) -> int:
        """Cores a group job's inner Snakemake runs with."""

    def plugin_settings(self, backend: str) -> Any:
        """The delegate plugin's settings object for ``backend`` (see settings.py)."""

    def container_args(self) -> str:
        """Arguments that apply the rules' containers in a spawned Snakemake."""

    def outputs_stored(self, job: JobExecutorInterface) -> None:
        """Call before reporting the success of a job that ran in a Snakemake of its
        own: it stored its storage outputs itself (see stored.py)."""

    def spawn_args(self, job: JobExecutorInterface | None, containers: bool = True) -> str:
        """The ``--set-resources`` of a spawned Snakemake running ``job``: the rules'
        container launchers (unless ``containers`` is False: the job runs in its image)
        and the requests learned() made for the job, so that the spawned Snakemake uses
        them instead of evaluating learned() again."""

    def wall_times(self, backend: str, rule: str) -> list[float]:
        """Wall seconds of the rule's recent successful jobs on ``backend`` (run
        journal; empty when there is none or it cannot be read)."""

    def job_submitted(self, backend: str, job_info: SubmittedJobInfo) -> None:
        """A backend took ``job_info.job`` (journal: external id, submission time)."""

    def job_ended(
        self, backend: str, job_info: SubmittedJobInfo, outcome: Outcome, msg: Any = None
    ) -> bool:
        """Journal the job's end; True if the host took the job elsewhere (failover):
        the backend then reports nothing to Snakemake."""


class SpawnsWithHostArgs:
    """Mixin (before the Snakemake executor class): the Snakemake a backend spawns
    for a job gets the host's :meth:`Host.spawn_args` for that very job."""

    _host: Host
    _formatting = threading.local()  # the job whose command this thread is formatting
    spawn_containers = True  # pass the rules' container launchers on

    def format_job_exec(self, job: JobExecutorInterface) -> str:
        self._formatting.job = job
        try:
            return super().format_job_exec(job)  # type: ignore[misc]
        finally:
            self._formatting.job = None

    def additional_general_args(self) -> str:
        job = getattr(self._formatting, "job", None)
        ours = self._host.spawn_args(job, self.spawn_containers)
        theirs = super().additional_general_args()  # type: ignore[misc]
        if isinstance(theirs, (list, tuple)):  # the interface's default is []
            theirs = " ".join(theirs)
        return f"{theirs} {ours}".strip()


class ReportsToHost:
    """Mixin (before the Snakemake executor class) passing every report past the host.

    A backend attaches what it knows of a job's end with :func:`attach`; without
    that, success is SUCCEEDED and an error FAILED with the message as reason.
    """

    name: str
    _host: Host

    def report_job_submission(self, job_info: SubmittedJobInfo, register_job: bool = True) -> None:
        super().report_job_submission(job_info, register_job=register_job)  # type: ignore[misc]
        self._host.job_submitted(self.name, job_info)

    def report_job_success(self, job_info: SubmittedJobInfo) -> None:
        outcome = self.outcome(job_info, JobState.SUCCEEDED, None)
        if not self._host.job_ended(self.name, job_info, outcome):
            super().report_job_success(job_info)  # type: ignore[misc]

    def report_job_error(self, job_info: SubmittedJobInfo, msg: Any = None, **kwargs: Any) -> None:
        outcome = self.outcome(job_info, JobState.FAILED, msg)
        if not self._host.job_ended(self.name, job_info, outcome, msg):
            super().report_job_error(job_info, outcome.message or msg, **kwargs)  # type: ignore[misc]

    def outcome(self, job_info: SubmittedJobInfo, state: JobState, msg: Any) -> Outcome:
        """The attached outcome, else one from the report itself (backends may refine)."""
        attached = (job_info.aux or {}).get(OUTCOME)
        if isinstance(attached, Outcome):
            return attached
        reason = str(msg).strip().splitlines()[0] if msg else None
        return Outcome(state, reason)
