"""What every backend without a shared file system needs, whatever the service.

Snakemake applies the file-system settings of the *selected* executor (``hybrid``,
a shared file system) to the whole run. A cloud job instead sees no shared file
system: its files live in the default storage (e.g. S3) and its sources are
deployed from there. So a cloud backend

* builds its jobs' command lines from a :class:`CloudWorkflowView`: the workflow
  with no shared file system, sources deployed, the image's ``python``;
* needs a default storage provider (checked at start-up) and uploads the sources
  once, before its first job;
* reports a finished job through ``Host.outputs_stored`` (the job stored its
  outputs itself): a file a local or SLURM job needs later is retrieved then, once.
"""

import dataclasses
import threading
from typing import Any

from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.settings import CommonSettings

from .. import compat


class CloudWorkflowView:
    """The workflow as a cloud job's command line must see it."""

    def __init__(self, workflow: Any, executor_settings: Any) -> None:
        self._workflow = workflow
        self.executor_settings = executor_settings
        self.storage_settings = dataclasses.replace(
            workflow.storage_settings, shared_fs_usage=frozenset()
        )
        self.remote_execution_settings = dataclasses.replace(
            workflow.remote_execution_settings, job_deploy_sources=True
        )
        self.spawned_job_args_factory = compat.spawned_job_args_factory(self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._workflow, name)


def common_settings(plugin_settings: CommonSettings) -> CommonSettings:
    """The reused plugin's common settings, without deploying the storage plugin in
    every job (a ``pip install`` per job): the job image must hold it."""
    return dataclasses.replace(plugin_settings, auto_deploy_default_storage_provider=False)


def require_default_storage(workflow: Any, backend: str) -> None:
    if not compat.default_storage_provider(workflow):
        raise WorkflowError(
            f"Rules routed to the {backend} backend run without a shared file system: "
            "their files must live in storage the cloud jobs can reach. Add "
            "--default-storage-provider s3 --default-storage-prefix s3://BUCKET/PATH "
            "(with snakemake-storage-plugin-s3; see docs/cloud.md)."
        )


class SourcesOnce:
    """Upload the workflow's sources to the default storage before the first job."""

    def __init__(self, workflow: Any) -> None:
        self._workflow = workflow
        self._lock = threading.Lock()
        self._done = False

    def ensure(self) -> None:
        with self._lock:
            if not self._done:
                compat.upload_sources(self._workflow)
                self._done = True
