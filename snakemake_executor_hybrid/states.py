"""One job-state model for every backend; each backend maps its native states here."""

from enum import Enum


class JobState(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    OUT_OF_MEMORY = "out_of_memory"
    NODE_FAILED = "node_failed"

    @property
    def final(self) -> bool:
        """True once the job will not change any more (no backwards transitions)."""
        return self not in (JobState.QUEUED, JobState.RUNNING)

    @property
    def ok(self) -> bool:
        return self is JobState.SUCCEEDED
