"""The SLURM backend's queries about ended and pending jobs (decisions: slurm_outcome).

All run only when needed: the usage query once per status cycle in which jobs
ended; partition limits once per partition and run; the extra look at a pending
job whose reason may or may not clear (a count limit, unavailable nodes) at most
every ``RECHECK_PENDING_SECONDS``.
"""

import getpass
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any

from . import slurm_outcome as so
from . import slurm_status as st

RECHECK_PENDING_SECONDS = 60.0
USAGE_ATTEMPTS = 3  # failed usage queries in a row after which a run stops asking

Run = Callable[[list[str]], Awaitable[tuple[int, str, str]]]


def request(job: Any, partition: str | None) -> so.Request:
    """What ``job`` asks SLURM for."""
    res = job.resources

    def number(name: str) -> int | None:
        value = res.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return so.Request(
        job.name, job.threads, number("mem_mb"), number("runtime"),
        partition or res.get("slurm_partition") or None,
    )  # fmt: skip


class Checks:
    def __init__(self, run: Run, logger: Any) -> None:
        self._run = run
        self._logger = logger
        self._partitions: dict[str, so.PartitionLimits | None] = {}
        self._pending_checked: dict[str, float] = {}
        self._usage_failures = 0

    async def usage(self, job_ids: list[str]) -> dict[str, so.JobUsage]:
        """Elapsed, TotalCPU and MaxRSS of jobs that ended (one sacct call per chunk);
        empty where sacct fails (said once; after USAGE_ATTEMPTS failures in a row,
        e.g. without accounting, it is not asked again in this run)."""
        found: dict[str, so.JobUsage] = {}
        if self._usage_failures >= USAGE_ATTEMPTS:
            return found
        for argv in so.usage_argvs(job_ids):
            code, out, err = await self._run(argv)
            if code != 0:
                self._usage_failures += 1
                if self._usage_failures == 1:
                    self._logger.warning(
                        f"hybrid: '{' '.join(argv[:2])} ...' failed ({err.strip() or code}): "
                        "what these SLURM jobs used is not in the run journal."
                    )
                return found
            self._usage_failures = 0
            found.update(so.parse_usage(out))
        return found

    async def never_starts(self, job: Any, record: st.SlurmRecord) -> str | None:
        """A message naming the request and the limit if the pending job can never
        start, else None."""
        reason = so.pending_reason(record)
        permanent = reason in so.NEVER_STARTS
        if not permanent and (reason in so.COUNT_LIMITS or reason == "ReqNodeNotAvail"):
            now = time.monotonic()
            last = self._pending_checked.get(record.job_id)
            if last is not None and now - last < RECHECK_PENDING_SECONDS:
                return None
            self._pending_checked[record.job_id] = now
            if reason == "ReqNodeNotAvail":
                permanent = await self._nodes_down(record)
            else:  # a count limit that no running job will free: it is 0
                code, out, _ = await self._run(st.running_jobs_argv(getpass.getuser()))
                permanent = code == 0 and not out.strip()
        if not permanent:
            return None
        self._pending_checked.pop(record.job_id, None)
        asked = request(job, record.partition)
        limits = await self.limits(asked.partition)
        return so.never_starts(record.job_id, asked, reason, limits)

    async def _nodes_down(self, record: st.SlurmRecord) -> bool:
        nodes = so.unavailable_nodes(record.reason)
        if nodes is None:  # sacct gives the reason without the node list
            code, out, _ = await self._run(st.pending_reason_argv(record.job_id))
            nodes = so.unavailable_nodes(out) if code == 0 else None
        if nodes is None:
            return False
        code, out, _ = await self._run(st.node_states_argv(nodes))
        return code == 0 and so.nodes_down(out)

    async def limits(self, partition: str | None) -> so.PartitionLimits | None:
        key = partition or ""
        if key not in self._partitions:
            code, out, _ = await self._run(so.partition_argv(partition))
            self._partitions[key] = so.parse_partitions(out, partition) if code == 0 else None
        return self._partitions[key]

    def limits_now(self, partition: str | None) -> so.PartitionLimits | None:
        """:meth:`limits` for the submission threads (not in the event loop)."""
        key = partition or ""
        if key not in self._partitions:
            try:
                done = subprocess.run(
                    so.partition_argv(partition), capture_output=True, text=True, timeout=60
                )
            except (OSError, subprocess.TimeoutExpired):
                return None
            ok = done.returncode == 0
            self._partitions[key] = so.parse_partitions(done.stdout, partition) if ok else None
        return self._partitions[key]
