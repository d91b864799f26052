"""Run a workflow through Snakemake's Python API with the hybrid executor, giving
the SLURM backend its own settings (the --slurm-* flags of the command line)."""

import sys
from pathlib import Path

from snakemake.api import SnakemakeApi
from snakemake.settings.types import OutputSettings, ResourceSettings
from snakemake_executor_plugin_slurm import ExecutorSettings as SlurmSettings

from snakemake_executor_hybrid.settings import ExecutorSettings

workdir = Path(sys.argv[1]).resolve()
settings = ExecutorSettings(
    routes="train=slurm",
    backend_settings={"slurm": SlurmSettings(keep_successful_logs=True)},
)
with SnakemakeApi(OutputSettings()) as api:
    workflow = api.workflow(
        resource_settings=ResourceSettings(nodes=4),
        snakefile=workdir / "Snakefile",
        workdir=workdir,
    )
    workflow.dag().execute_workflow(executor="hybrid", executor_settings=settings)
