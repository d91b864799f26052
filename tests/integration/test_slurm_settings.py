"""Settings of the reused SLURM plugin reach the SLURM backend — from the command line,
a profile, or Snakemake's Python API — and SLURM array jobs are tracked task by task."""

import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, copy_workflow, snakemake

pytestmark = [pytest.mark.integration, pytest.mark.slurm, pytest.mark.usefixtures("slurm")]


def logs(wd, rule):
    return sorted((wd / ".snakemake" / "slurm_logs" / f"rule_{rule}").rglob("*.log"))


def test_profile_keys_reach_the_slurm_backend(tmp_path):
    wd = copy_workflow("slurm_settings", tmp_path)
    profile = wd / "profiles" / "cluster"
    profile.mkdir(parents=True)
    (profile / "config.yaml").write_text(
        "executor: hybrid\njobs: 4\nhybrid-slurm-status-interval: 1\n"
        "slurm-keep-successful-logs: true\nslurm-status-command: squeue\n"
        "config: [shards=1]\n"
    )
    run = snakemake(wd, "--workflow-profile", "profiles/cluster")
    assert run.returncode == 0, run.stderr
    assert "SLURM status from squeue" in run.stderr  # --slurm-status-command honoured
    assert logs(wd, "train") and logs(wd, "shard")  # --slurm-keep-successful-logs honoured


def test_python_api_settings_object_reaches_the_slurm_backend(tmp_path):
    wd = copy_workflow("slurm_settings", tmp_path)
    example = REPO / "docs" / "examples" / "api_settings.py"
    run = snakemake_python(wd, example.read_text())
    assert run.returncode == 0, run.stderr
    assert (wd / "train.txt").read_text().strip().isdigit()
    assert logs(wd, "train")  # keep_successful_logs=True from the settings object


def test_python_api_without_settings_uses_the_plugin_defaults_and_says_so(tmp_path):
    wd = copy_workflow("slurm_settings", tmp_path)
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from snakemake.api import SnakemakeApi
        from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

        workdir = Path(sys.argv[1]).resolve()
        with SnakemakeApi(OutputSettings()) as api:
            workflow = api.workflow(
                resource_settings=ResourceSettings(nodes=2),
                config_settings=ConfigSettings(config={"shards": 1}),
                snakefile=workdir / "Snakefile",
                workdir=workdir,
            )
            # no executor settings at all: the hybrid's defaults
            workflow.dag().execute_workflow(executor="hybrid", executor_settings=None)
        """
    )
    run = snakemake_python(wd, script)
    assert run.returncode == 0, run.stderr
    assert "no settings given for the slurm backend (Python API)" in run.stderr
    assert not logs(wd, "train")  # the plugin's default: successful jobs' logs removed


def test_array_jobs_are_tracked_task_by_task(tmp_path):
    wd = copy_workflow("slurm_settings", tmp_path)
    run = snakemake(
        wd,
        "--executor",
        "hybrid",
        "--jobs",
        "6",
        "--keep-going",
        "--hybrid-slurm-status-interval",
        "1",
        "--slurm-array-jobs",
        "shard",
        "--config",
        "fail=3",
    )
    output = run.stdout + run.stderr
    assert run.returncode == 1, output  # shard 3 failed
    tasks = {i: (wd / "shards" / f"{i}.txt") for i in (1, 2, 3, 4)}
    assert not tasks[3].exists()
    array_ids = {tasks[i].read_text().strip() for i in (1, 2, 4)}
    parents = {task.split("_")[0] for task in array_ids}
    assert len(parents) == 1 and parents.pop().isdigit(), array_ids  # one array job
    # the failure is shard 3's own, reported with its own task's log
    failed = re.search(r"SLURM job (\d+_\d+) ended FAILED.*SLURM log: (\S+)", output)
    assert failed, output
    assert "shard 3 failed" in Path(failed[2]).read_text()
    assert output.count("ended FAILED") == 1


def test_shutdown_does_not_wait_out_the_status_interval(tmp_path):
    # the status check every 15 s sees the last job end; upstream's status thread would
    # then sleep another interval before Snakemake could exit. Timed from the log line
    # of the last job seen finished, so that time spent queued behind others' jobs on a
    # busy cluster does not count.
    wd = copy_workflow("slurm_settings", tmp_path)
    run = snakemake(
        wd, "--executor", "hybrid", "--jobs", "2", "--hybrid-slurm-status-interval", "15",
        "--config", "shards=1",
    )  # fmt: skip
    exited = time.time()
    assert run.returncode == 0, run.stderr
    stamps = re.findall(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$", run.stderr, re.M)
    assert stamps, run.stderr
    last_seen = time.mktime(time.strptime(stamps[-1], "%a %b %d %H:%M:%S %Y"))
    assert exited - last_seen < 8, (exited - last_seen, run.stderr)


def snakemake_python(wd, script):
    path = wd / "run_api.py"
    path.write_text(script)
    return subprocess.run(
        [sys.executable, str(path), str(wd)],
        cwd=wd,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
