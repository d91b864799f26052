"""Start-up validation, the local core budget and what the log tells, via the CLI."""

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import copy_workflow, snakemake


@pytest.fixture
def wd(tmp_path):
    return copy_workflow("routing", tmp_path)


def hybrid(wd, *args, **kwargs):
    return snakemake(wd, "--executor", "hybrid", "--jobs", "10", *args, **kwargs)


def test_unknown_backend_in_rule_stops_the_run_before_any_job(wd):
    run = hybrid(wd, "--config", "executor=slrum", "seconds=0")
    assert run.returncode == 1
    err = run.stderr
    assert "Rule 'step': unknown backend 'slrum' (from resource 'executor' of rule 'step')" in err
    assert "Valid backends: aws-batch, local, slurm." in err
    assert not (wd / "steps").exists()


def test_set_resources_overrides_and_is_named_as_the_source(wd):
    run = hybrid(
        wd, "--config", "executor=local", "seconds=0", "--set-resources", "step:executor=bogus"
    )
    assert run.returncode == 1
    assert "unknown backend 'bogus' (from --set-resources step:executor=...)" in run.stderr


def test_a_route_matching_no_rule_is_named_with_the_closest_rules(wd):
    run = hybrid(wd, "--config", "executor=local", "seconds=0", "--hybrid-routes", "stpe=slurm")
    assert run.returncode == 0  # a warning, not an error: the workflow may be partial
    assert (
        "route 'stpe=slurm' of --hybrid-routes matches no rule of this workflow. "
        "Did you mean 'step'?" in run.stderr
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--hybrid-routes", "step"], "Invalid route 'step' in --hybrid-routes"),
        (
            ["--hybrid-routes", "st*=cloud"],
            "unknown backend 'cloud' (from route 'st*=cloud' of --hybrid-routes)",
        ),
        (
            ["--hybrid-default-backend", "gpu"],
            "unknown backend 'gpu' (from --hybrid-default-backend",
        ),
        (["--hybrid-local-cores", "0"], "--hybrid-local-cores must be at least 1, got 0"),
        (["--hybrid-slurm-status-interval", "0"], "must be a positive number of seconds, got 0"),
    ],
)
def test_bad_settings_are_named_with_the_fix(wd, flags, message):
    run = hybrid(wd, "--config", "seconds=0", *flags)
    assert run.returncode == 1
    assert message in run.stderr
    assert not (wd / "steps").exists()


def test_backend_that_cannot_run_here_is_refused_at_start(wd, tmp_path):
    # PATH without the SLURM client tools: the slurm backend cannot submit.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("sh", "bash", "date", "sleep", "cat", "which"):
        (bindir / tool).symlink_to(shutil.which(tool))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{bindir}")
    run = hybrid(wd, "--config", "executor=slurm", "seconds=0", env=env)
    assert run.returncode == 1
    assert (
        "Rule 'step' is routed to backend 'slurm' (from resource 'executor' of rule 'step')"
        in run.stderr
    )
    assert "command 'sbatch' is not on PATH" in run.stderr


def spans(wd, count):
    out = []
    for i in range(count):
        start, end, where = (wd / f"steps/{i}.txt").read_text().split()
        out.append((float(start), float(end), where))
    return out


def max_overlap(intervals):
    events = sorted([(s, 1) for s, _, _ in intervals] + [(e, -1) for _, e, _ in intervals])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    return peak


def test_local_core_budget_is_respected(wd):
    run = hybrid(wd, "--config", "seconds=0.5", "count=6", "--hybrid-local-cores", "2")
    assert run.returncode == 0, run.stderr
    intervals = spans(wd, 6)
    assert all(where == "local" for *_, where in intervals)
    assert max_overlap(intervals) == 2  # concurrent, but never above the budget


def test_threads_count_against_the_budget(wd):
    run = hybrid(wd, "--config", "seconds=0.3", "count=4", "threads=2", "--hybrid-local-cores", "3")
    assert run.returncode == 0, run.stderr
    assert max_overlap(spans(wd, 4)) == 1  # 2 + 2 > 3


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm")
def test_set_resources_moves_a_rule_to_slurm_and_verbose_shows_sbatch(wd):
    run = hybrid(
        wd,
        "--config",
        "seconds=0",
        "count=1",
        "--verbose",
        "--slurm-keep-successful-logs",  # a flag of the SLURM plugin, honoured here
        "--set-resources",
        "step:executor=slurm",
        "step:runtime=5",
        "step:mem_mb=500",
    )
    assert run.returncode == 0, run.stderr
    (interval,) = spans(wd, 1)
    assert interval[2].isdigit()
    assert "-> slurm [--set-resources step:executor=...]" in run.stderr
    assert "sbatch call: sbatch --parsable" in run.stderr
    kept = list((wd / ".snakemake" / "slurm_logs").rglob(f"{interval[2]}.log"))
    assert len(kept) == 1, "--slurm-keep-successful-logs was not applied"


DYNAMIC = """
rule all:
    input: "b.txt"

rule a:
    output: "a.txt"
    shell: "echo {config[backend]} > {output}"

rule b:  # its backend is read from a's output, known only once a ran
    input: "a.txt"
    output: "b.txt"
    resources: executor=lambda wc, input: open(input[0]).read().strip()
    shell: "echo ${{SLURM_JOB_ID:-local}} > {output}"
"""


def test_executor_resource_from_input_is_decided_at_dispatch(tmp_path):
    (tmp_path / "Snakefile").write_text(DYNAMIC)
    run = hybrid(tmp_path, "--config", "backend=local")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "b.txt").read_text().strip() == "local"
    assert "(b) -> local [resource 'executor' of rule 'b']" in run.stderr


def test_bad_executor_resource_from_input_fails_that_job(tmp_path):
    (tmp_path / "Snakefile").write_text(DYNAMIC)
    run = hybrid(tmp_path, "--config", "backend=nowhere")
    assert run.returncode == 1
    assert "Rule 'b': unknown backend 'nowhere'" in run.stderr
    assert (tmp_path / "a.txt").exists() and not (tmp_path / "b.txt").exists()


def test_a_group_whose_rules_route_to_different_backends_is_refused(tmp_path):
    # (differing 'executor' resources in one group Snakemake refuses itself; routes
    # are the hybrid executor's own)
    (tmp_path / "Snakefile").write_text(
        "rule b:\n    input: 'a.txt'\n    output: 'b.txt'\n    group: 'g'\n"
        "    shell: 'cp {input} {output}'\n"
        "rule a:\n    output: 'a.txt'\n    group: 'g'\n    shell: 'touch {output}'\n"
    )
    run = hybrid(tmp_path, "--hybrid-routes", "a=local,b=slurm", "--", "b.txt")
    assert run.returncode == 1
    assert "Group job 'g' mixes backends" in run.stdout + run.stderr
    assert "local (route 'a=local' of --hybrid-routes)" in run.stdout + run.stderr
    assert not (tmp_path / "a.txt").exists()
