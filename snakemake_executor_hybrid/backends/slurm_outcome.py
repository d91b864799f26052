"""How a SLURM job ended or why it will never start, from what SLURM reports (pure).

* usage: one ``sacct`` call (with job steps) for the jobs that ended in a status
  cycle: wall time and CPU time of the allocation, the largest MaxRSS of its
  steps (each step is held to the job's memory);
* memory kills: OUT_OF_MEMORY where SLURM confines jobs with cgroups; without
  them (``JobAcctGatherParams=OverMemoryKill``) sacct says FAILED and the killed
  step ``CANCELLED by 0`` with signal 9, the job log says "Exceeded job memory
  limit" and "StepId=... exceeded memory limit (USED > LIMIT)";
* infrastructure failures (NODE_FAIL, BOOT_FAIL, sbatch refusing a job, a job
  pending for a reason that cannot clear by itself): the job's command never
  failed, so the job may fail over to another backend.

Captured examples: tests/unit/data/adaptive_fixtures.md.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..states import JobState
from .base import Outcome, Usage
from .slurm_status import SACCT_CHUNK, SlurmRecord

USAGE_FIELDS = ("JobID", "State", "ExitCode", "ElapsedRaw", "TotalCPU", "MaxRSS")
INFRASTRUCTURE_STATES = frozenset({"NODE_FAIL", "BOOT_FAIL"})
MEMORY_NOTICE = re.compile(r"exceeded (?:job |step )?memory limit", re.IGNORECASE)
MEMORY_LIMIT_LINE = re.compile(r"StepId=\S+ exceeded memory limit \((\d+) > (\d+)\)")
MB = 2**20  # SLURM's --mem unit (and so Snakemake's mem_mb on SLURM)
KILLED_NEAR_LIMIT = 0.95  # a step killed by signal 9 at this share of the request ran out of memory

# Pending reasons that never clear by themselves (the request exceeds a partition
# or per-job limit, or names an account/QOS/constraint that cannot be used).
NEVER_STARTS = {
    "PartitionConfig": "more than the partition's nodes or limits allow",
    "PartitionNodeLimit": "more nodes than the partition allows",
    "PartitionTimeLimit": "a longer time limit than the partition allows",
    "BadConstraints": "constraints no node satisfies",
    "InvalidAccount": "an account it may not use",
    "InvalidQOS": "a QOS it may not use",
    "QOSMaxCpuPerJobLimit": "more CPUs than its QOS allows per job",
    "QOSMaxMemoryPerJob": "more memory than its QOS allows per job",
    "QOSMaxNodePerJobLimit": "more nodes than its QOS allows per job",
    "QOSMaxWallDurationPerJobLimit": "a longer time limit than its QOS allows",
    "AssocMaxCpuPerJobLimit": "more CPUs than its association allows per job",
    "AssocMaxMemPerJob": "more memory than its association allows per job",
    "AssocMaxNodesPerJobLimit": "more nodes than its association allows per job",
    "AssocMaxWallDurationPerJobLimit": "a longer time limit than its association allows",
}
# Limits on how many jobs run at once: they clear when other jobs end, unless the
# user runs none (then the limit is 0 and nothing will ever end).
COUNT_LIMITS = frozenset(
    {"AssocMaxJobsLimit", "AssocGrpJobsLimit", "QOSMaxJobsPerUserLimit",
     "QOSMaxJobsPerAccountLimit", "QOSGrpJobsLimit"}
)  # fmt: skip
NODE_DOWN_STATES = ("down", "drain", "fail", "future", "not_responding")


# -- usage ------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobUsage:
    usage: Usage
    killed_by_signal: bool  # the allocation or a step ended with signal 9
    out_of_memory: bool  # a step ended OUT_OF_MEMORY (cgroup enforcement)


def usage_argvs(job_ids: Sequence[str]) -> list[list[str]]:
    """sacct calls reporting the allocation *and* the steps of each job."""
    ids = sorted(set(job_ids))
    return [
        [
            "sacct",
            "--parsable2",
            "--noheader",
            f"--format={','.join(USAGE_FIELDS)}",
            f"--jobs={','.join(ids[i : i + SACCT_CHUNK])}",
        ]
        for i in range(0, len(ids), SACCT_CHUNK)
    ]


def rss_mb(text: str) -> float | None:
    """``322152K`` -> 314.6: MB as SLURM counts them for ``--mem`` (2**20 bytes)."""
    match = re.fullmatch(r"([\d.]+)([KMGT]?)", text.strip())
    if not match:
        return None
    scale = 1024 ** "BKMGT".index(match.group(2) or "B")
    return round(float(match.group(1)) * scale / MB, 1)


def cpu_seconds(text: str) -> float | None:
    """sacct's TotalCPU: ``MM:SS.mmm``, ``HH:MM:SS`` or ``D-HH:MM:SS``."""
    text = text.strip()
    if not text:
        return None
    days, _, rest = text.rpartition("-")
    parts = rest.split(":")
    try:
        seconds = sum(float(p) * 60**i for i, p in enumerate(reversed(parts)))
        return seconds + (int(days) * 86400 if days else 0)
    except ValueError:
        return None


def parse_usage(output: str) -> dict[str, JobUsage]:
    """:func:`usage_argvs` output -> usage per job id (steps folded into their job)."""
    rows: dict[str, list[list[str]]] = {}
    for line in output.splitlines():
        cols = (line.split("|") + [""] * len(USAGE_FIELDS))[: len(USAGE_FIELDS)]
        if cols[0]:
            rows.setdefault(cols[0].split(".")[0], []).append(cols)
    found = {}
    for job_id, lines in rows.items():
        alloc = next((c for c in lines if c[0] == job_id), lines[0])
        peaks = [m for m in (rss_mb(c[5]) for c in lines) if m is not None]
        wall = float(alloc[3]) if alloc[3].isdigit() else None
        found[job_id] = JobUsage(
            Usage(wall_s=wall, cpu_s=cpu_seconds(alloc[4]), mem_mb=max(peaks) if peaks else None),
            killed_by_signal=any(c[2].endswith(":9") for c in lines),
            out_of_memory=any(c[1].startswith("OUT_OF_MEMORY") for c in lines),
        )
    return found


# -- how a job ended --------------------------------------------------------------------


def memory_kill(log_text: str, used: JobUsage | None, requested_mb: int | None) -> str | None:
    """Why the job counts as killed for memory, or None."""
    limit = MEMORY_LIMIT_LINE.search(log_text)
    if limit:
        return (
            f"killed for memory by SLURM: a step used {int(limit.group(1)) / MB:.0f} MB of "
            f"the {int(limit.group(2)) / MB:.0f} MB requested"
        )
    if MEMORY_NOTICE.search(log_text):
        return "killed for memory by SLURM (job log: exceeded memory limit)"
    if used is None:
        return None
    if used.out_of_memory:
        return "killed for memory by SLURM (OUT_OF_MEMORY)"
    peak = used.usage.mem_mb
    if used.killed_by_signal and peak and requested_mb and peak >= KILLED_NEAR_LIMIT * requested_mb:
        return f"killed by signal 9 at {peak:.0f} MB of the {requested_mb} MB requested"
    return None


def ended(
    record: SlurmRecord,
    used: JobUsage | None,
    log_text: str,
    requested_mb: int | None,
    requeue: bool,
) -> Outcome:
    """The outcome of a job whose record is final."""
    state = record.state(requeue)
    usage = used.usage if used else None
    if state is JobState.SUCCEEDED:
        return Outcome(state, None, usage)
    if record.native_state in INFRASTRUCTURE_STATES:
        where = f" on {record.nodes}" if record.nodes and record.nodes != "None assigned" else ""
        return Outcome(state, f"SLURM {record.native_state}{where}", usage, infrastructure=True)
    oom = memory_kill(log_text, used, requested_mb) if state in _MAYBE_OOM else None
    if state is JobState.OUT_OF_MEMORY or oom:
        return Outcome(JobState.OUT_OF_MEMORY, oom or "OUT_OF_MEMORY", usage)
    if state is JobState.TIMED_OUT:
        return Outcome(state, "time limit reached (TIMEOUT)", usage)
    return Outcome(state, f"SLURM {record.native_state} (exit code {record.exit_code})", usage)


_MAYBE_OOM = (JobState.FAILED, JobState.CANCELLED, JobState.OUT_OF_MEMORY)


# -- jobs that will never start -----------------------------------------------------------


def pending_reason(record: SlurmRecord) -> str:
    """The reason code of a pending job (squeue adds details after a comma)."""
    return record.reason.split(",")[0].strip()


def unavailable_nodes(reason: str) -> str | None:
    """``ReqNodeNotAvail, UnavailableNodes:n[1-2]`` -> ``n[1-2]``."""
    _, sep, nodes = reason.partition("UnavailableNodes:")
    return nodes.strip() or None if sep else None


def nodes_down(sinfo_output: str) -> bool:
    """Whether every node listed (``sinfo -h -N -o %N|%T``) is down, drained or failed."""
    states = [line.split("|")[-1].strip().lower() for line in sinfo_output.splitlines() if line]
    return bool(states) and all(s.rstrip("*~#!%$@^-+").startswith(NODE_DOWN_STATES) for s in states)


@dataclass(frozen=True)
class Request:
    """What a job asks SLURM for (for messages)."""

    rule: str
    cpus: int | None
    mem_mb: int | None
    runtime_min: int | None
    partition: str | None


@dataclass(frozen=True)
class PartitionLimits:
    name: str
    cpus: int | None  # CPUs of its largest node
    mem_mb: int | None  # memory of its largest node
    time: str  # MaxTime as sinfo prints it


def partition_argv(partition: str | None) -> list[str]:
    argv = ["sinfo", "--noheader", "--format=%P|%c|%m|%l"]
    return argv + [f"--partition={partition}"] if partition else argv


def parse_partitions(output: str, partition: str | None) -> PartitionLimits | None:
    """The limits of ``partition`` (or of the default one, marked ``*``)."""
    best: dict[str, PartitionLimits] = {}
    default = None
    for line in output.splitlines():
        cols = line.split("|")
        if len(cols) != 4:
            continue
        name = cols[0].rstrip("*")
        if cols[0].endswith("*"):
            default = name
        cpus = int(cols[1].rstrip("+")) if cols[1].rstrip("+").isdigit() else None
        mem = int(cols[2].rstrip("+")) if cols[2].rstrip("+").isdigit() else None
        known = best.get(name)
        if known is not None:
            cpus = max(c for c in (cpus, known.cpus, 0) if c is not None) or None
            mem = max(m for m in (mem, known.mem_mb, 0) if m is not None) or None
        best[name] = PartitionLimits(name, cpus, mem, cols[3])
    return best.get(partition or default or "")


def exceeded(request: Request, limits: PartitionLimits | None) -> str:
    """What of the request is beyond the partition's nodes, or '' if that is not it."""
    if limits is None:
        return ""
    over = []
    if request.cpus and limits.cpus and request.cpus > limits.cpus:
        over.append(f"{request.cpus} CPUs, and its nodes have at most {limits.cpus}")
    if request.mem_mb and limits.mem_mb and request.mem_mb > limits.mem_mb:
        over.append(f"{request.mem_mb} MB of memory, and its nodes have at most {limits.mem_mb} MB")
    return "; ".join(over)


def _asks(request: Request) -> str:
    parts = [
        f"{request.cpus} CPUs" if request.cpus else "",
        f"mem_mb={request.mem_mb}" if request.mem_mb else "",
        f"runtime={request.runtime_min} min" if request.runtime_min else "",
    ]
    return ", ".join(p for p in parts if p) or "the defaults"


FIX = " Lower the request, or give the rule a failover chain, e.g. executor='slurm/local'.\n"


def never_starts(job_id: str, request: Request, reason: str, limits: PartitionLimits | None) -> str:
    """Why a pending job will never start, naming its request and the limit."""
    part = limits.name if limits else (request.partition or "default")
    over = exceeded(request, limits)
    why = f"it asks for {over}" if over else (
        f"it asks for {NEVER_STARTS.get(reason, 'what cannot be granted')} ({_asks(request)})"
    )  # fmt: skip
    return (
        f"SLURM job {job_id} (rule {request.rule}) can never start on partition '{part}': "
        f"{why} (pending reason {reason})."
    )


def refused(request: Request, sbatch_error: str, limits: PartitionLimits | None) -> str:
    """Why sbatch refused a job, naming its request and the limit."""
    part = limits.name if limits else (request.partition or "default")
    lines = [line.removeprefix("sbatch: error: ").strip() for line in sbatch_error.splitlines()]
    said = "; ".join(line for line in lines if line) or "no message"
    over = exceeded(request, limits)
    why = f"it asks for {over}" if over else f"it asks for {_asks(request)}"
    return (
        f"sbatch refused the job of rule {request.rule} on partition '{part}': {why} "
        f"(sbatch: {said})."
    )
