"""Every backend maps its native states into one model; what matters is that a job
is reported once, when it will not change any more, and never while it may."""

import pytest

from snakemake_executor_hybrid.backends import aws_batch_api, slurm_status
from snakemake_executor_hybrid.states import JobState

# (backend, native states in the order a job passes through them, its last state)
LIVES = [
    ("slurm", ["PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "COMPLETED"]),
    ("slurm", ["PENDING", "RUNNING", "FAILED"]),
    ("slurm", ["PENDING", "REQUEUED", "PENDING", "RUNNING", "TIMEOUT"]),
    ("aws-batch", ["SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED"]),
    ("aws-batch", ["SUBMITTED", "RUNNABLE", "FAILED"]),
]


def state(backend: str, native: str) -> JobState:
    if backend == "slurm":
        return slurm_status.parse_sacct(f"1|{native}|0:0|None|n\n")["1"].state()
    return aws_batch_api.parse_jobs({"jobs": [{"jobId": "1", "status": native}]})["1"].state


@pytest.mark.parametrize(("backend", "life"), LIVES)
def test_a_job_is_final_only_at_its_last_state_and_ok_only_on_success(backend, life):
    states = [state(backend, native) for native in life]
    assert [s.final for s in states] == [False] * (len(life) - 1) + [True]
    assert states[-1].ok == (life[-1] in ("COMPLETED", "SUCCEEDED"))


@pytest.mark.parametrize("backend", ["slurm", "aws-batch"])
def test_a_state_a_newer_service_may_add_is_never_taken_for_an_end(backend):
    assert not state(backend, "SOME_STATE_FROM_THE_FUTURE").final
