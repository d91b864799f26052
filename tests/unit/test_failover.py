"""Failover decisions: which outcomes move a job, and where to."""

import threading

from snakemake_executor_hybrid.adaptive.failover import Failover
from snakemake_executor_hybrid.backends.base import Outcome
from snakemake_executor_hybrid.routing import Choice
from snakemake_executor_hybrid.states import JobState

CANNOT_START = Outcome(JobState.FAILED, "can never start", infrastructure=True)
COMMAND_FAILED = Outcome(JobState.FAILED, "exit code 1")
KILLED = Outcome(JobState.OUT_OF_MEMORY, "killed for memory")


class Job:
    pass


def test_an_infrastructure_failure_moves_the_job_along_its_chain():
    failover, job = Failover(lambda backend, job: None), Job()
    failover.placed(job, Choice("slurm", "s", ("slurm", "cloud", "local")))
    assert failover.next_backend(job, "slurm", CANNOT_START) == "cloud"
    assert failover.next_backend(job, "cloud", CANNOT_START) == "local"
    assert failover.next_backend(job, "local", CANNOT_START) is None  # the end: reported


def test_the_jobs_own_failures_are_not_failed_over():
    failover, job = Failover(lambda backend, job: None), Job()
    failover.placed(job, Choice("slurm", "s", ("slurm", "local")))
    assert failover.next_backend(job, "slurm", COMMAND_FAILED) is None
    failover.placed(job, Choice("slurm", "s", ("slurm", "local")))
    assert failover.next_backend(job, "slurm", KILLED) is None


def test_a_job_without_a_chain_goes_nowhere():
    failover, job = Failover(lambda backend, job: None), Job()
    failover.placed(job, Choice("slurm", "s"))
    assert failover.next_backend(job, "slurm", CANNOT_START) is None


def test_moves_happen_in_the_failover_thread_until_stopped():
    moved, done = [], threading.Event()

    def resubmit(backend, job):
        moved.append((backend, threading.current_thread().name))
        done.set()

    failover, job = Failover(resubmit), Job()
    failover.move(job, "local")
    assert done.wait(5)
    assert moved[0][0] == "local" and moved[0][1].startswith("hybrid-failover")
    failover.stop()
    failover.placed(job, Choice("slurm", "s", ("slurm", "local")))
    assert failover.next_backend(job, "slurm", CANNOT_START) is None
