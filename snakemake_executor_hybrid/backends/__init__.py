"""The registry of backends a job can be routed to.

Each backend lives in its own module (``create(host) -> Backend``, see
``base.py``) and is imported only when a run uses it, so importing the plugin
stays cheap (Snakemake imports every installed plugin in every job process).
Adding a backend is one module and one entry here.
"""

import importlib
import importlib.util
import shutil
from dataclasses import dataclass, field
from typing import Any

from .base import Backend, Capabilities


@dataclass(frozen=True)
class BackendSpec:
    name: str
    module: str  # our module implementing it, imported lazily
    capabilities: Capabilities = field(default_factory=Capabilities)
    requires_module: str | None = None  # e.g. the Snakemake plugin it reuses
    requires_command: str | None = None  # a client tool that must be on PATH
    install_hint: str = ""

    def missing(self) -> str | None:
        """Why this backend cannot run on this machine, or None if it can."""
        if self.requires_module and importlib.util.find_spec(self.requires_module) is None:
            return f"Python package '{self.requires_module}' is not installed ({self.install_hint})"
        if self.requires_command and shutil.which(self.requires_command) is None:
            return f"command '{self.requires_command}' is not on PATH ({self.install_hint})"
        return None

    def create(self, host: Any) -> Backend:
        backend = importlib.import_module(self.module).create(host)
        if not isinstance(backend, Backend):
            raise TypeError(f"{self.module}.create() returned {backend!r}, not a Backend")
        return backend


BACKENDS: dict[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec(
            "local",
            "snakemake_executor_hybrid.backends.local",
            Capabilities(container_runtimes=("podman", "docker", "apptainer", "singularity")),
        ),
        BackendSpec(
            "slurm",
            "snakemake_executor_hybrid.backends.slurm",
            Capabilities(
                container_runtimes=("apptainer", "singularity", "podman", "docker"),
                plugin="slurm",
            ),
            requires_module="snakemake_executor_plugin_slurm",
            requires_command="sbatch",
            install_hint="run Snakemake on a SLURM login node with the SLURM "
            "client tools; pip install snakemake-executor-plugin-slurm",
        ),
        BackendSpec(
            "aws-batch",
            "snakemake_executor_hybrid.backends.aws_batch",
            Capabilities(shared_fs=False, wraps_containers=True, plugin="aws-batch"),
            requires_module="snakemake_executor_plugin_aws_batch",
            install_hint="pip install 'snakemake-executor-plugin-hybrid[cloud]'",
        ),
    )
}
