"""Rules with container: images under --executor hybrid: real podman, locally and on SLURM."""

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import (
    copy_workflow,
    sacct_jobs,
    slurm_run_id,
    snakemake,
    squeue_ids,
    start,
    wait_until,
)

pytestmark = pytest.mark.integration

MARKER = "hybrid-test-image"


def report(path: Path) -> dict[str, str]:
    keys = ("where", "slurm", "uid", "threads", "value", "cwd")
    return dict(zip(keys, path.read_text().split("\n"), strict=False))


def containers_of(wd: Path) -> list[str]:
    """Containers (running or not) that jobs of the workflow in ``wd`` started."""
    out = subprocess.run(
        ["podman", "ps", "--all", "--quiet", "--filter", f"label=snakemake.hybrid.workdir={wd}"],
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
        "HYBRID_TEST_VALUE",
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
    extra = (wd / "podman_local.txt").read_text().split("\n")[6:]
    assert "host" in extra  # it read its input, written on the host
    assert "from-container-args" in extra  # container_args reached the runtime
    assert (wd / "podman_local.txt").stat().st_uid == os.getuid()

    on_slurm = report(wd / "podman_slurm.txt")
    assert on_slurm["where"] == MARKER and on_slurm["slurm"].isdigit()  # SLURM_JOB_ID
    assert (wd / "podman_slurm.txt").read_text().split("\n")[6].isdigit()  # SLURM_CPUS_PER_TASK
    accounted = sacct_jobs(slurm_run_id(output))
    assert accounted[on_slurm["slurm"]] == "COMPLETED"

    assert (wd / "grouped_b.txt").read_text() == f"{MARKER}\n{MARKER}\n"

    where, python, cwd = (wd / "from_script.txt").read_text().split()
    assert (where, python, cwd) == (MARKER, "/usr/bin/python3", str(wd))

    # failures say which rule, status, image and runtime; the command's own
    # stderr is kept (here, and in the SLURM job's log)
    assert "about to fail" in output
    assert (
        "hybrid: command failed with exit status 3 in container "
        "localhost/hybrid-test:bookworm (podman)" in output
    )
    (slurm_log,) = re.findall(r"\S*slurm_logs/rule_broken_slurm/\S+\.log", output)[:1]
    log_text = (wd / slurm_log).read_text()
    assert "about to fail" in log_text
    assert "hybrid: command failed with exit status 3 in container" in log_text
    assert not containers_of(wd)


def write_workflow(wd: Path, image: str, resources: str = "") -> Path:
    wd.mkdir(exist_ok=True)
    (wd / "Snakefile").write_text(
        f'rule only:\n    output: "out.txt"\n    container: "{image}"\n'
        f"    resources: {resources or 'mem_mb=500'}\n"
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


SLEEPER = """
rule all:
    input: "local.txt", "slurm.txt"

rule sleep:
    output: "{where}.txt"
    container: "localhost/hybrid-test:bookworm"
    resources: executor=lambda wc: wc.where, runtime=5, mem_mb=500
    shell: "touch {wildcards.where}.started; sleep 600; touch {output}"
"""


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm")
def test_ctrl_c_stops_containers_locally_and_on_slurm(tmp_path, podman):
    wd = tmp_path / "wf"
    wd.mkdir()
    (wd / "Snakefile").write_text(SLEEPER)
    proc = start(wd, "--executor", "hybrid", "--jobs", "2")
    wait_until(
        lambda: (wd / "local.started").exists() and (wd / "slurm.started").exists(),
        120,
        "both container jobs to start",
        proc,
    )
    assert len(containers_of(wd)) == 2
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal
    proc.wait(120)
    wait_until(lambda: not containers_of(wd), 60, "the containers to be removed")
    output = proc.stdout.read() if proc.stdout else ""
    run_id = slurm_run_id(output)
    wait_until(lambda: not squeue_ids(run_id), 60, "the SLURM job to leave the queue")


def test_group_mixing_native_and_container_rules_is_refused(tmp_path, podman):
    wd = tmp_path / "wf"
    wd.mkdir()
    (wd / "Snakefile").write_text(
        'rule a:\n    output: "a.txt"\n    group: "g"\n    shell: "touch {output}"\n\n'
        'rule b:\n    input: "a.txt"\n    output: "b.txt"\n    group: "g"\n'
        f'    container: "{podman}"\n    shell: "touch {{output}}"\n'
    )
    run = snakemake(wd, "--executor", "hybrid", "--jobs", "1")
    output = run.stdout + run.stderr
    assert run.returncode == 1
    assert f"Group 'g' mixes containers (a: native; b: {podman} (podman))" in output
    assert not (wd / "a.txt").exists()
