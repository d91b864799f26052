"""Rules with container: images under --executor hybrid: real podman, locally and on SLURM."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import copy_workflow, sacct_jobs, slurm_run_id, snakemake

pytestmark = pytest.mark.integration

MARKER = "hybrid-test-image"


def report(path: Path) -> dict[str, str]:
    keys = ("where", "slurm", "uid", "threads", "value", "cwd")
    return dict(zip(keys, path.read_text().split("\n"), strict=False))


def leftover_containers() -> list[str]:
    out = subprocess.run(
        ["podman", "ps", "--all", "--quiet", "--filter", "label=snakemake.hybrid.rule"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm")
def test_native_podman_local_and_podman_on_slurm_in_one_run(tmp_path, podman):
    wd = copy_workflow("containers", tmp_path)
    env = {**os.environ, "HYBRID_TEST_VALUE": "passed"}
    run = snakemake(
        wd,
        "--executor",
        "hybrid",
        "--jobs",
        "4",
        "--keep-going",
        "--hybrid-container-env",
        "HYBRID_TEST_VALUE,SLURM_JOB_ID",
        env=env,
    )
    output = run.stdout + run.stderr
    assert run.returncode != 0, "rules broken and broken_slurm must fail the run"

    native = report(wd / "native.txt")
    assert native["where"] == "host" and native["slurm"] == "no-slurm"

    local = report(wd / "podman_local.txt")
    assert local["where"] == MARKER and local["slurm"] == "no-slurm"
    assert local["uid"] == str(os.getuid())
    assert local["threads"] == "2"  # the rule's threads, as OMP_NUM_THREADS
    assert local["value"] == "passed" and local["cwd"] == str(wd)
    assert "host" in (wd / "podman_local.txt").read_text().split("\n")[6:]  # read its input
    assert (wd / "podman_local.txt").stat().st_uid == os.getuid()

    on_slurm = report(wd / "podman_slurm.txt")
    assert on_slurm["where"] == MARKER and on_slurm["slurm"].isdigit()
    accounted = sacct_jobs(slurm_run_id(output))
    assert accounted[on_slurm["slurm"]] == "COMPLETED"

    where, python, cwd = (wd / "from_script.txt").read_text().split()
    assert (where, python, cwd) == (MARKER, "/usr/bin/python3", str(wd))

    # failures say which rule, status, image and runtime; the command's own
    # stderr is kept (here, and in the SLURM job's log)
    assert "about to fail" in output
    assert (
        "hybrid: rule broken: command failed with exit status 3 in container "
        "localhost/hybrid-test:bookworm (podman)" in output
    )
    (slurm_log,) = re.findall(r"\S*slurm_logs/rule_broken_slurm/\S+\.log", output)[:1]
    log_text = (wd / slurm_log).read_text()
    assert "about to fail" in log_text
    assert "hybrid: rule broken_slurm: command failed with exit status 3 in container" in log_text
    assert not leftover_containers()


def write_workflow(wd: Path, image: str, resources: str = "") -> Path:
    wd.mkdir(exist_ok=True)
    (wd / "Snakefile").write_text(
        f'rule only:\n    output: "out.txt"\n    container: "{image}"\n'
        f"    resources: {resources or 'mem_mb=10'}\n"
        '    shell: "cat /etc/hybrid-test-image > {output}"\n'
    )
    return wd


def test_docker_runtime_runs_the_rule_as_the_caller(tmp_path, docker):
    wd = write_workflow(tmp_path / "wf", "docker://localhost/hybrid-test:bookworm")
    run = snakemake(
        wd,
        "--executor",
        "hybrid",
        "--jobs",
        "1",
        "--hybrid-container-runtime",
        "docker",
        env=docker,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert (wd / "out.txt").read_text() == f"{MARKER}\n"
    assert (wd / "out.txt").stat().st_uid == os.getuid()
    (spec,) = (wd / ".snakemake" / "hybrid" / "containers").glob("*.json")
    assert '"runtime": "docker"' in spec.read_text()


def test_missing_image_is_reported_before_any_job_starts(tmp_path, podman):
    wd = write_workflow(tmp_path / "wf", "localhost/no-such-image:1")
    run = snakemake(wd, "--executor", "hybrid", "--jobs", "1")
    output = run.stdout + run.stderr
    assert run.returncode == 1
    assert (
        "Rule 'only': image 'localhost/no-such-image:1' with podman: the image is not "
        "present and pulling it failed" in output
    )
    assert "hybrid: job" not in output and not (wd / "out.txt").exists()


def test_missing_runtime_is_reported_before_any_job_starts(tmp_path, podman):
    wd = write_workflow(tmp_path / "wf", "docker://localhost/x", 'container_runtime="apptainer"')
    run = snakemake(wd, "--executor", "hybrid", "--jobs", "1")
    output = run.stdout + run.stderr
    assert run.returncode == 1
    assert (
        "Rule 'only': image 'docker://localhost/x' with apptainer: 'apptainer' is not on PATH"
        in output
    )
    assert "hybrid: job" not in output


STAND_IN = """#!/bin/sh
# Stand-in for apptainer (not installable here): logs its arguments, runs commands natively.
echo "$*" >> "{log}"
case "$1" in
  --version) echo "apptainer version 1.3.4" ;;
  pull) touch "$3" ;;
  exec) for last; do :; done; exec bash -c "$last" ;;
esac
"""


def test_snakemake_own_apptainer_deployment_is_left_alone(tmp_path, podman):
    """--software-deployment-method apptainer: Snakemake wraps the commands itself."""
    bin_dir, log = tmp_path / "bin", tmp_path / "apptainer.log"
    bin_dir.mkdir()
    (bin_dir / "apptainer").write_text(STAND_IN.format(log=log))
    (bin_dir / "apptainer").chmod(0o755)
    wd = tmp_path / "wf"
    wd.mkdir()
    (wd / "Snakefile").write_text(
        'rule only:\n    output: "out.txt"\n    container: "docker://localhost/tool:1"\n'
        '    shell: "echo ran > {output}"\n'
    )
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    run = snakemake(wd, "--executor", "hybrid", "--jobs", "1", "--sdm", "apptainer", env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (wd / "out.txt").read_text() == "ran\n"
    calls = log.read_text().splitlines()
    assert any(c.startswith("exec ") and ".snakemake/singularity/" in c for c in calls), calls
    assert not (wd / ".snakemake" / "hybrid" / "containers").exists()
