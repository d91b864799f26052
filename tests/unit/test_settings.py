import pytest
from snakemake_interface_common.exceptions import WorkflowError

from snakemake_executor_hybrid.settings import ExecutorSettings


def test_defaults_are_valid():
    settings = ExecutorSettings()
    assert settings.default_backend == "local" and settings.gate_share == "private"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"default_backend": "gpu"}, "unknown backend 'gpu' (from --hybrid-default-backend"),
        ({"routes": "train"}, "Invalid route 'train' in --hybrid-routes"),
        ({"local_cores": 0}, "--hybrid-local-cores must be at least 1, got 0"),
        ({"slurm_status_interval": 0}, "--hybrid-slurm-status-interval must be a positive"),
        ({"gate_poll_interval": -1}, "--hybrid-gate-poll-interval must be a positive"),
        ({"gate_share": "world"}, "--hybrid-gate-share: unknown share mode 'world'"),
        ({"container_runtime": "lxc"}, "unknown container runtime 'lxc' (from --hybrid-container"),
        ({"container_runtime": "gpu=podman"}, "Invalid item 'gpu=podman' in --hybrid-container"),
        ({"container_args": "--env 'A=b"}, "Cannot split --hybrid-container-args"),
        ({"container_env": "A,B-C"}, "--hybrid-container-env: 'B-C' is not an environment"),
    ],
)
def test_bad_values_name_the_flag(kwargs, message):
    with pytest.raises(WorkflowError) as err:
        ExecutorSettings(**kwargs)
    assert message in str(err.value)
