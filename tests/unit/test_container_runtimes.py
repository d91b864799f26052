"""Container runtimes: settings parsers, image references and the argv of each runtime."""

import pytest
from snakemake_interface_common.exceptions import WorkflowError

from snakemake_executor_hybrid.containers.launch import failure_message
from snakemake_executor_hybrid.containers.runtimes import (
    Bind,
    ContainerSpec,
    exists_argv,
    image_for,
    kill_argv,
    parse_runtimes,
    run_argv,
)

BACKENDS = ("local", "slurm")


def spec(runtime: str, **kw) -> ContainerSpec:
    base = dict(runtime=runtime, image="img:1", shell="bash", workdir="/w", uid=1000, gid=100)
    return ContainerSpec(**(base | kw))


def option_values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == flag]


def test_parse_runtimes_one_for_all_or_per_backend():
    assert parse_runtimes("podman", BACKENDS) == {"local": "podman", "slurm": "podman"}
    assert parse_runtimes(" local=docker , slurm=apptainer ", BACKENDS) == {
        "local": "docker",
        "slurm": "apptainer",
    }
    assert parse_runtimes(None, BACKENDS) == {}


@pytest.mark.parametrize(
    ("runtime", "url", "expected"),
    [
        ("podman", "docker://python:3.11", "python:3.11"),
        ("docker", "localhost/test:1", "localhost/test:1"),
        ("apptainer", "docker://python:3.11", "docker://python:3.11"),
        ("singularity", "/images/tool.sif", "/images/tool.sif"),
    ],
)
def test_image_references(runtime, url, expected):
    assert image_for(runtime, url, "r") == expected


def test_relative_sif_becomes_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert image_for("apptainer", "img/tool.sif", "r") == str(tmp_path / "img/tool.sif")


@pytest.mark.parametrize(
    ("runtime", "url", "message"),
    [
        ("podman", "tool.sif", "Singularity image file, which podman cannot run"),
        ("docker", "library://x/y", "docker cannot run image 'library://x/y'"),
        ("apptainer", "python:3.11", "give docker://python:3.11 or the path of a .sif"),
        ("podman", " ", "empty container image"),
    ],
)
def test_impossible_images_are_named(runtime, url, message):
    with pytest.raises(WorkflowError, match="Rule 'r'") as err:
        image_for(runtime, url, "r")
    assert message in str(err.value)


def test_podman_argv_same_paths_user_and_threads():
    environ = {"OMP_NUM_THREADS": "4", "TMPDIR": "/", "SECRET": "x", "HF_HOME": "/h"}
    argv = run_argv(spec("podman", env=("HF_HOME",), args=("--device", "gpu")), "echo hi", environ)
    assert argv[:3] == ["podman", "run", "--rm"]
    assert option_values(argv, "--workdir") == ["/w"]
    assert option_values(argv, "--volume") == ["/w:/w", "/:/"]
    assert "--userns=keep-id" in argv  # rootless: files belong to the caller
    assert option_values(argv, "--env") == ["HOME=/w", "OMP_NUM_THREADS", "TMPDIR", "HF_HOME"]
    assert argv[-6:] == ["--device", "gpu", "img:1", "bash", "-c", "set -euo pipefail; echo hi"]


@pytest.mark.parametrize("runtime", ["podman", "docker"])
def test_slurm_and_mpi_variables_pass_without_being_named(runtime):
    environ = {"SLURM_JOB_ID": "7", "SLURM_CPUS_PER_TASK": "2", "PMIX_RANK": "0", "SLURMX": "no"}
    passed = option_values(run_argv(spec(runtime), "true", environ), "--env")
    assert passed == ["HOME=/w", "PMIX_RANK", "SLURM_CPUS_PER_TASK", "SLURM_JOB_ID"]


def test_root_podman_needs_no_user_mapping():
    assert "--userns=keep-id" not in run_argv(spec("podman", uid=0, gid=0), "true", {})


def test_docker_runs_as_the_caller():
    argv = run_argv(spec("docker", shell="sh"), "true", {})
    assert option_values(argv, "--user") == ["1000:100"]
    assert argv[-3:] == ["sh", "-c", "true"]  # no bash prefix for sh


def test_apptainer_argv_binds_and_home(tmp_path):
    ro = Bind(str(tmp_path), read_only=True)
    argv = run_argv(spec("apptainer", image="/i.sif", binds=(ro, Bind("/w/sub"))), "x", {})
    assert argv[:2] == ["apptainer", "exec"]
    assert option_values(argv, "--home") == ["/w"] and option_values(argv, "--pwd") == ["/w"]
    # the workdir, then the read-only bind; /w/sub is inside /w already
    assert option_values(argv, "--bind") == ["/w", f"{tmp_path}:{tmp_path}:ro"]
    assert "--env" not in argv  # apptainer passes the environment itself
    assert argv[-4:] == ["/i.sif", "bash", "-c", "set -euo pipefail; x"]


def test_missing_bind_paths_are_skipped():
    argv = run_argv(spec("podman", binds=(Bind("/does/not/exist"),)), "x", {})
    assert option_values(argv, "--volume") == ["/w:/w"]


def test_existence_checks():
    assert exists_argv("podman", "a:1") == ["podman", "image", "exists", "a:1"]
    assert exists_argv("docker", "a:1")[:3] == ["docker", "image", "inspect"]
    assert exists_argv("apptainer", "/a.sif") is None


def test_failure_messages_name_rule_image_runtime_and_cause():
    s = spec("podman")
    assert failure_message(s, 3) == (
        "hybrid: command failed with exit status 3 in container img:1 (podman)"
    )
    assert "a command (or the shell 'bash') was not found" in failure_message(s, 127)
    assert "killed by signal 9" in failure_message(s, -9)


def test_named_containers_can_be_killed_by_name():
    argv = run_argv(spec("docker"), "true", {}, name="snakemake-ab12")
    assert option_values(argv, "--name") == ["snakemake-ab12"]
    assert kill_argv("podman", "snakemake-ab12") == ["podman", "kill", "snakemake-ab12"]
    assert kill_argv("apptainer", "x") is None  # its process is the container
    assert "--name" not in run_argv(spec("apptainer"), "true", {}, name="x")
