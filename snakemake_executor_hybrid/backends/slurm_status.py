"""SLURM status queries as pure argv builders and parsers (no I/O here).

One ``sacct`` call per poll cycle covers every active job of the run.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from ..states import JobState

SACCT_FIELDS = ("JobID", "State", "ExitCode", "Reason", "NodeList")
SACCT_CHUNK = 500  # job ids per sacct call, to keep argv short

# Native SLURM job states (sacct/squeue long names) -> our state model.
_STATE_MAP: dict[str, JobState] = {
    "PENDING": JobState.QUEUED,
    "CONFIGURING": JobState.QUEUED,
    "REQUEUED": JobState.QUEUED,
    "REQUEUE_FED": JobState.QUEUED,
    "REQUEUE_HOLD": JobState.QUEUED,
    "RESV_DEL_HOLD": JobState.QUEUED,
    "RUNNING": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING,
    "STAGE_OUT": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "RESIZING": JobState.RUNNING,
    "SUSPENDED": JobState.RUNNING,
    "STOPPED": JobState.RUNNING,
    "COMPLETED": JobState.SUCCEEDED,
    "FAILED": JobState.FAILED,
    "BOOT_FAIL": JobState.FAILED,
    "DEADLINE": JobState.FAILED,
    "PREEMPTED": JobState.FAILED,
    "REVOKED": JobState.FAILED,
    "SPECIAL_EXIT": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED,
    "TIMEOUT": JobState.TIMED_OUT,
    "OUT_OF_MEMORY": JobState.OUT_OF_MEMORY,
    "NODE_FAIL": JobState.NODE_FAILED,
}

# States SLURM itself retries when the job was submitted with --requeue.
REQUEUED_BY_SLURM = frozenset({"NODE_FAIL", "PREEMPTED"})


@dataclass(frozen=True)
class SlurmRecord:
    job_id: str
    native_state: str  # e.g. "CANCELLED" (sacct prints "CANCELLED by 0")
    exit_code: str
    reason: str
    nodes: str

    def state(self, requeue: bool = False) -> JobState:
        if requeue and self.native_state in REQUEUED_BY_SLURM:
            return JobState.QUEUED
        # An unknown (newer) state is treated as still in progress.
        return _STATE_MAP.get(self.native_state, JobState.RUNNING)


def sacct_argvs(job_ids: Sequence[str]) -> list[list[str]]:
    """The sacct calls that report the allocation record of each job id."""
    ids = sorted(set(job_ids))
    return [
        [
            "sacct",
            "--allocations",
            "--parsable2",
            "--noheader",
            f"--format={','.join(SACCT_FIELDS)}",
            f"--jobs={','.join(ids[i : i + SACCT_CHUNK])}",
        ]
        for i in range(0, len(ids), SACCT_CHUNK)
    ]


def parse_sacct(output: str) -> dict[str, SlurmRecord]:
    """Parse ``sacct --parsable2 --noheader`` output in SACCT_FIELDS order.

    A job id may appear several times (e.g. after a requeue); the last line wins,
    which is the record sacct lists last, i.e. the most recent one.
    """
    records: dict[str, SlurmRecord] = {}
    for line in output.splitlines():
        if not line.strip():
            continue
        cols = line.split("|")
        if len(cols) < len(SACCT_FIELDS):
            cols += [""] * (len(SACCT_FIELDS) - len(cols))
        job_id, state, exit_code, reason, nodes = cols[: len(SACCT_FIELDS)]
        native = state.split()[0] if state.strip() else "PENDING"
        records[job_id] = SlurmRecord(job_id, native, exit_code, reason, nodes)
    return records


def lookup(records: dict[str, SlurmRecord], job_id: str) -> SlurmRecord | None:
    """The record of ``job_id``; an array task (``123_4``) falls back to its parent."""
    if job_id in records:
        return records[job_id]
    parent, sep, task = job_id.partition("_")
    if sep and parent.isdigit() and task.isdigit():
        return records.get(parent)
    return None


def failure_message(record: SlurmRecord, log_path: object) -> str:
    """The job error shown to the user: SLURM state, exit code, reason, log."""
    code, _, signal = record.exit_code.partition(":")
    exit_part = f"exit code {code or '?'}"
    if signal and signal != "0":
        exit_part += f", signal {signal}"
    reason = record.reason if record.reason and record.reason != "None" else "none given"
    where = f" on {record.nodes}" if record.nodes and record.nodes != "None assigned" else ""
    return (
        f"SLURM job {record.job_id} ended {record.native_state}{where} "
        f"({exit_part}; reason: {reason}). SLURM log: {log_path}\n"
    )


def squeue_argv(run_name: str) -> list[str]:
    """squeue call listing the ids of this run's jobs SLURM still holds."""
    return ["squeue", "--noheader", "--format=%i", f"--name={run_name}"]


def scancel_argv(run_name: str, clusters: bool = False) -> list[str]:
    """Cancel every job of this run by its job name (covers submissions in flight)."""
    argv = ["scancel", f"--name={run_name}"]
    if clusters:
        argv.append("--clusters=all")
    return argv


def default_account_argv(user: str) -> list[str]:
    return ["sacctmgr", "--noheader", "--parsable2", "show", "user", user, "format=DefaultAccount"]
