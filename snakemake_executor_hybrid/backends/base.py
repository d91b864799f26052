"""The backend contract: what the executor asks of a backend, and what it offers one.

A backend is one small module with a ``create(host) -> Backend`` function and an
entry in the registry (``backends/__init__.py``). The executor routes each job
to a backend by name and hands it over with ``run_jobs``; the backend reports
submission, success and failure to Snakemake itself (through the reporting
methods of the Snakemake executor it is built on) and stops its jobs on
``cancel``.
"""

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from snakemake_interface_executor_plugins.jobs import JobExecutorInterface


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

