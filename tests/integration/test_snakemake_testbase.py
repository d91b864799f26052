"""Snakemake's own executor test base, with jobs routed local, to SLURM, and mixed."""

import pytest
from snakemake.common.tests import TestWorkflowsLocalStorageBase
from snakemake.settings.types import ResourceSettings

from snakemake_executor_hybrid.settings import ExecutorSettings


class HybridBase(TestWorkflowsLocalStorageBase):
    __test__ = False

    def get_executor(self) -> str:
        return "hybrid"


class TestAllLocal(HybridBase):
    __test__ = True

    def get_executor_settings(self):
        return ExecutorSettings(default_backend="local")


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm")
class TestAllSlurm(HybridBase):
    __test__ = True

    def get_executor_settings(self):
        return ExecutorSettings(default_backend="slurm", slurm_status_interval=1)

    def get_resource_settings(self):
        # upstream's rule c asks for mem="5MB"; the project's SLURM enforces memory, and
        # each step of a SLURM job holds a Snakemake of about 120 MB
        return ResourceSettings(overwrite_resources={"c": {"mem_mb": 500}})


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm")
class TestMixed(HybridBase):
    __test__ = True

    def get_executor_settings(self):
        # 'simple': a and b on SLURM, c and d local; 'groups': the group of a
        # and b on SLURM, c local.
        return ExecutorSettings(routes="a=slurm,b=slurm", slurm_status_interval=1)
