"""One run mixing local and SLURM jobs, checked against SLURM's own accounting."""

import pytest

from tests.conftest import copy_workflow, sacct_jobs, slurm_run_id, snakemake

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm")]


def read_ids(path):
    return path.read_text().split()


def test_mixed_run_dispatches_each_job_where_routed(tmp_path):
    wd = copy_workflow("mixed", tmp_path)
    run = snakemake(
        wd,
        "--executor",
        "hybrid",
        "--jobs",
        "20",
        "--retries",
        "1",
        "--keep-going",
        "--hybrid-routes",
        "group_*=slurm",
    )
    output = run.stdout + run.stderr
    assert run.returncode != 0, "the broken rules must fail the run"

    # local-routed (odd) fan jobs and the localrule ran here; even ones on SLURM
    slurm_ids = set()
    for i in range(12):
        (where,) = read_ids(wd / f"fan/{i}.txt")
        if i % 2:
            assert where == "local", f"fan {i} should be local"
        else:
            assert where.isdigit(), f"fan {i} should have run on SLURM"
            slurm_ids.add(where)
    assert read_ids(wd / "summary.txt")[-1] == "local"

    # the group's two jobs ran, in order, inside one SLURM job
    group_ids = read_ids(wd / "group/b.txt")
    assert len(group_ids) == 2 and group_ids[0] == group_ids[1] and group_ids[0].isdigit()
    slurm_ids.add(group_ids[0])

    # retried once on SLURM, then succeeded
    (retry_id,) = read_ids(wd / "retry/ok.txt")
    slurm_ids.add(retry_id)
    assert not (wd / "broken_local.txt").exists()
    assert not (wd / "broken_slurm.txt").exists()

    # SLURM's accounting lists exactly the SLURM-routed jobs of this run
    accounted = sacct_jobs(slurm_run_id(output))
    completed = {j for j, s in accounted.items() if s == "COMPLETED"}
    failed = {j for j, s in accounted.items() if s == "FAILED"}
    assert completed == slurm_ids
    # retry's first attempt + broken_slurm twice (--retries 1)
    assert len(failed) == 3, accounted

    # failures are reported with the SLURM state, exit code and log path
    # (the batch script is the inner Snakemake, which exits 1 on a failed job)
    assert "ended FAILED on" in output and "exit code 1" in output
    assert ".snakemake/slurm_logs/rule_broken_slurm/" in output
    # every job's log line names its backend and why
    assert "(pair_group_a_group_b) -> slurm [route 'group_*=slurm' of --hybrid-routes]" in output
    assert "(fan) -> local [--hybrid-default-backend]" in output
    assert "(fan) -> slurm [resource 'executor' of rule 'fan']" in output


def test_rerun_after_success_has_nothing_to_do(tmp_path):
    wd = copy_workflow("mixed", tmp_path)
    args = ["--executor", "hybrid", "--jobs", "4", "--hybrid-routes", "group_*=slurm"]
    targets = [f"fan/{i}.txt" for i in range(4)] + ["group/b.txt"]
    first = snakemake(wd, *args, *targets)
    assert first.returncode == 0, first.stderr
    second = snakemake(wd, *args, *targets)
    assert second.returncode == 0
    assert "Nothing to be done" in second.stdout + second.stderr
