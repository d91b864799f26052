"""How SLURM jobs ended or why they never start, on output captured from the project's
SLURM with memory enforced (data/adaptive_fixtures.md says how each job was made)."""

from pathlib import Path

import pytest

from snakemake_executor_hybrid.backends import slurm_outcome as so
from snakemake_executor_hybrid.backends import slurm_status as st
from snakemake_executor_hybrid.states import JobState

DATA = Path(__file__).parent / "data"
USAGE = so.parse_usage((DATA / "adaptive_sacct_usage.txt").read_text())
LOGS = dict(
    part.split("\n", 1)
    for part in (DATA / "adaptive_memory_kill.log").read_text().split("== ")
    if part.strip()
)
PARTITIONS = (DATA / "adaptive_sinfo_partitions.txt").read_text()
OK, BATCH_KILLED, STEP_KILLED = sorted(USAGE)


def record(line: str) -> st.SlurmRecord:
    return next(iter(st.parse_sacct(line).values()))


def test_usage_folds_steps_into_their_job():
    ok = USAGE[OK].usage
    # the largest step (step 0: a 150 MB process) counts, in SLURM's MB (2**20 bytes)
    assert ok.mem_mb == pytest.approx(167028 / 1024, abs=0.1)
    assert ok.wall_s == 7 and ok.cpu_s == pytest.approx(0.373)
    assert not USAGE[OK].killed_by_signal
    assert USAGE[BATCH_KILLED].killed_by_signal and USAGE[STEP_KILLED].killed_by_signal


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("00:00.373", 0.373), ("01:02:03", 3723), ("2-01:00:00", 2 * 86400 + 3600)],
)
def test_total_cpu_formats(text, seconds):
    assert so.cpu_seconds(text) == pytest.approx(seconds)
    assert so.cpu_seconds("") is None


def test_a_job_killed_in_its_batch_step_is_out_of_memory():
    rec = record(f"{BATCH_KILLED}|FAILED|0:9|None|vm|main\n")
    log = LOGS[f"slurm-{BATCH_KILLED}.out"]
    outcome = so.ended(rec, USAGE[BATCH_KILLED], log, 100, requeue=False)
    assert outcome.state is JobState.OUT_OF_MEMORY and not outcome.infrastructure
    assert (
        outcome.reason == "killed for memory by SLURM: a step used 315 MB of the 100 MB requested"
    )


def test_a_job_killed_in_an_srun_step_is_out_of_memory():
    # a Snakemake job: the rule's command runs in step 0; the job itself ends FAILED 9:0
    rec = record(f"{STEP_KILLED}|FAILED|9:0|None|vm|main\n")
    outcome = so.ended(rec, USAGE[STEP_KILLED], LOGS[f"slurm-{STEP_KILLED}.out"], 200, False)
    assert outcome.state is JobState.OUT_OF_MEMORY
    assert "a step used 413 MB of the 200 MB requested" in outcome.reason


def test_without_the_log_signal_9_at_the_request_is_a_memory_kill():
    rec = record(f"{STEP_KILLED}|FAILED|9:0|None|vm|main\n")
    outcome = so.ended(rec, USAGE[STEP_KILLED], "", 400, False)
    assert outcome.state is JobState.OUT_OF_MEMORY
    assert outcome.reason == "killed by signal 9 at 413 MB of the 400 MB requested"
    # far below the request, signal 9 was something else
    assert so.ended(rec, USAGE[STEP_KILLED], "", 4000, False).state is JobState.FAILED


def test_out_of_memory_state_where_cgroups_confine_jobs():
    rec = record("21|OUT_OF_MEMORY|0:125|None|n1|main\n")
    assert so.ended(rec, None, "", 100, False).state is JobState.OUT_OF_MEMORY


def test_a_plain_failure_stays_a_failure_with_its_usage():
    rec = record(f"{OK}|FAILED|1:0|None|vm|main\n")
    outcome = so.ended(rec, USAGE[OK], "Traceback ...\n", 300, False)
    assert outcome.state is JobState.FAILED and not outcome.infrastructure
    assert outcome.usage == USAGE[OK].usage


def test_node_fail_is_an_infrastructure_failure():
    # captured: the node set DOWN under a running job (adaptive_fixtures.md, --node-failure)
    text = (DATA / "adaptive_sacct_node_fail.txt").read_text()
    rec = next(iter(st.parse_sacct(text).values()))
    used = so.parse_usage((DATA / "adaptive_sacct_node_fail_usage.txt").read_text())
    outcome = so.ended(rec, used[rec.job_id], "", 100, requeue=False)
    assert outcome.state is JobState.NODE_FAILED and outcome.infrastructure
    assert outcome.reason == "SLURM NODE_FAIL on vm"
    # with --slurm-requeue, SLURM runs it again: not final
    assert not rec.state(requeue=True).final


def test_boot_fail_is_an_infrastructure_failure():
    # Not captured (needs a node that fails to boot): sacct's format, state from its manual.
    rec = record("22|BOOT_FAIL|0:0|None|n1|main\n")
    outcome = so.ended(rec, None, "", None, False)
    assert outcome.infrastructure and outcome.reason == "SLURM BOOT_FAIL on n1"


def test_partition_limits_from_sinfo():
    limits = so.parse_partitions(PARTITIONS, None)
    assert limits == so.PartitionLimits("main", 2, 22800, "infinite")
    assert so.parse_partitions(PARTITIONS, "gpu").name == "gpu"
    assert so.parse_partitions(PARTITIONS, "nope") is None


def test_a_job_asking_more_cpus_than_any_node_never_starts():
    for text in ("adaptive_sacct_pending.txt", "adaptive_squeue_pending.txt"):
        parse = st.parse_sacct if "sacct" in text else st.parse_squeue
        rec = next(iter(parse((DATA / text).read_text()).values()))
        assert rec.state() is JobState.QUEUED
        assert so.pending_reason(rec) in so.NEVER_STARTS
        assert rec.partition == "main"
    request = so.Request("big", 3, 100, 1, "main")
    message = so.never_starts(
        rec.job_id, request, "PartitionConfig", so.parse_partitions(PARTITIONS, "main")
    )
    assert message == (
        f"SLURM job {rec.job_id} (rule big) can never start on partition 'main': it asks for "
        "3 CPUs, and its nodes have at most 2 (pending reason PartitionConfig)."
    )


def test_a_policy_limit_is_named_when_no_node_limit_explains_it():
    request = so.Request("big", 1, 100, 600, None)
    message = so.never_starts("7", request, "QOSMaxWallDurationPerJobLimit", None)
    assert (
        "a longer time limit than its QOS allows (1 CPUs, mem_mb=100, runtime=600 min)" in message
    )


def test_sbatch_refusing_too_much_memory_names_request_and_limit():
    error = (DATA / "adaptive_sbatch_refused.txt").read_text()
    request = so.Request("huge", 1, 1 << 30, 1, None)
    message = so.refused(request, error, so.parse_partitions(PARTITIONS, None))
    assert message == (
        "sbatch refused the job of rule huge on partition 'main': it asks for 1073741824 MB "
        "of memory, and its nodes have at most 22800 MB (sbatch: Memory specification can "
        "not be satisfied; Batch job submission failed: Requested node configuration is not "
        "available)."
    )


def test_req_node_not_avail_never_starts_only_while_its_nodes_are_down():
    # captured with the node set DOWN (adaptive_fixtures.md, --node-failure)
    rec = next(iter(st.parse_squeue((DATA / "adaptive_squeue_node_down.txt").read_text()).values()))
    assert so.pending_reason(rec) == "ReqNodeNotAvail"
    assert so.unavailable_nodes(rec.reason) == "vm"
    assert so.nodes_down((DATA / "adaptive_sinfo_node_down.txt").read_text())
    assert not so.nodes_down("vm|idle\n") and not so.nodes_down("vm|down*\nvm2|mixed\n")
    assert so.nodes_down("n1|drained\nn2|down*\n") and not so.nodes_down("")


def test_count_limits_are_not_permanent_by_themselves():
    assert "AssocMaxJobsLimit" in so.COUNT_LIMITS and "AssocMaxJobsLimit" not in so.NEVER_STARTS
    assert "Resources" not in so.NEVER_STARTS and "Priority" not in so.NEVER_STARTS
