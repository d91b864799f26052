"""SLURM status queries as pure argv builders and parsers (no I/O here).

One ``sacct`` call per poll cycle covers every active job of the run (or, with
``--slurm-status-command squeue``, one ``squeue`` call by the run's job name).
Array tasks are tracked one by one: sacct and squeue print a running or finished
task as ``123_4`` and the tasks still pending as one line ``123_[5-7,9%2]``.
"""

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ..states import JobState

SACCT_FIELDS = ("JobID", "State", "ExitCode", "Reason", "NodeList", "Partition")
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
    partition: str = ""

    def state(self, requeue: bool = False) -> JobState:
        if requeue and self.native_state in REQUEUED_BY_SLURM:
            return JobState.QUEUED
        # An unknown (newer) state is treated as still in progress.
        return _STATE_MAP.get(self.native_state, JobState.RUNNING)


def sacct_argvs(job_ids: Sequence[str]) -> list[list[str]]:
    """The sacct calls that report the allocation record of each job id.

    An array task's parent is asked for too: sacct lists pending tasks only as a
    range under the parent (``33_[1-3]``), never by their own id."""
    ids = sorted(set(job_ids) | {j.partition("_")[0] for j in job_ids if "_" in j})
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


_ARRAY_RANGE = re.compile(r"^(\d+)_\[([0-9,\-]+)(?:%\d+)?\]$")


def expand_job_ids(job_id: str) -> Iterator[str]:
    """``123_[4-6,9%2]`` -> 123_4, 123_5, 123_6, 123_9; any other id as it is."""
    match = _ARRAY_RANGE.match(job_id)
    if match is None:
        yield job_id
        return
    parent, spec = match.groups()
    for part in spec.split(","):
        first, _, last = part.partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            for task in range(int(first), int(last or first) + 1):
                yield f"{parent}_{task}"


def _records(rows: Iterator[list[str]]) -> dict[str, SlurmRecord]:
    """Records from rows in SACCT_FIELDS order; the last row of a job id wins (sacct
    lists a requeued job's most recent record last)."""
    records: dict[str, SlurmRecord] = {}
    for cols in rows:
        if len(cols) < len(SACCT_FIELDS):
            cols += [""] * (len(SACCT_FIELDS) - len(cols))
        job_id, state, exit_code, reason, nodes, partition = cols[: len(SACCT_FIELDS)]
        native = state.split()[0] if state.strip() else "PENDING"
        for one in expand_job_ids(job_id):
            records[one] = SlurmRecord(one, native, exit_code, reason, nodes, partition)
    return records


def parse_sacct(output: str) -> dict[str, SlurmRecord]:
    """Parse ``sacct --parsable2 --noheader`` output in SACCT_FIELDS order."""
    return _records(line.split("|") for line in output.splitlines() if line.strip())


def squeue_status_argv(run_name: str) -> list[str]:
    """squeue call reporting every job of this run, finished ones too (for MinJobAge)."""
    return [
        "squeue",
        "--noheader",
        "--states=all",
        f"--name={run_name}",
        "--format=%i|%T|%r|%N|%P",
    ]


def parse_squeue(output: str) -> dict[str, SlurmRecord]:
    """Parse :func:`squeue_status_argv` output (squeue reports no exit code)."""
    rows = []
    for line in output.splitlines():
        if line.strip():
            job_id, state, reason, nodes, partition = (line.split("|") + [""] * 4)[:5]
            rows.append([job_id, state, "", reason, nodes, partition])
    return _records(iter(rows))


def lookup(records: dict[str, SlurmRecord], job_id: str) -> SlurmRecord | None:
    """The record of ``job_id``: an array task (``123_4``) has its own record once
    SLURM lists it (or the pending range holding it); never its siblings'."""
    return records.get(job_id)


def failure_message(record: SlurmRecord, log_path: object, detail: str | None = None) -> str:
    """The job error shown to the user: SLURM state, exit code, reason (or what we
    made of it, ``detail``), log."""
    code, _, signal = record.exit_code.partition(":")
    exit_part = f"exit code {code or '?'}"
    if signal and signal != "0":
        exit_part += f", signal {signal}"
    reason = record.reason if record.reason and record.reason != "None" else "none given"
    if detail and not detail.startswith(f"SLURM {record.native_state}"):
        reason = detail
    where = f" on {record.nodes}" if record.nodes and record.nodes != "None assigned" else ""
    return (
        f"SLURM job {record.job_id} ended {record.native_state}{where} "
        f"({exit_part}; reason: {reason}). SLURM log: {log_path}\n"
    )


def squeue_argv(run_name: str) -> list[str]:
    """squeue call listing the ids of this run's jobs SLURM still holds."""
    return ["squeue", "--noheader", "--format=%i", f"--name={run_name}"]


def running_jobs_argv(user: str) -> list[str]:
    """squeue call listing the ids of ``user``'s running jobs."""
    return ["squeue", "--noheader", "--states=RUNNING", f"--user={user}", "--format=%i"]


def pending_reason_argv(job_id: str) -> list[str]:
    """squeue call printing a pending job's full reason (with ``UnavailableNodes:...``)."""
    return ["squeue", "--noheader", f"--jobs={job_id}", "--format=%r"]


def node_states_argv(nodes: str) -> list[str]:
    return ["sinfo", "--noheader", "--Node", f"--nodes={nodes}", "--format=%N|%T"]


def scancel_ids_argv(job_ids: Sequence[str]) -> list[str]:
    return ["scancel", *job_ids]


def scancel_argv(run_name: str, clusters: bool = False) -> list[str]:
    """Cancel every job of this run by its job name (covers submissions in flight)."""
    argv = ["scancel", f"--name={run_name}"]
    if clusters:
        argv.append("--clusters=all")
    return argv


def default_account_argv(user: str) -> list[str]:
    return ["sacctmgr", "--noheader", "--parsable2", "show", "user", user, "format=DefaultAccount"]
