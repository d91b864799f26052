"""Bundles of small SLURM jobs: which jobs, how many together, when to submit (pure).

A bundle is several ready jobs of one rule with the same resource request and the
same attempt, run as one SLURM job by one inner Snakemake (``bundle_run``). Jobs
wait for companions at most the fill time; a bundle is submitted as soon as it is
full. Its size comes from a target duration and the rule's past runtimes (median),
or, without history, from the maximum count; its allocation holds as many members
at once as the node's CPUs and memory allow.
"""

import fnmatch
import math
import statistics
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from snakemake_interface_common.exceptions import WorkflowError

# resources that make a job unfit for a bundle: more than one task or node, GPUs, MPI
_OWN_ALLOCATION = ("mpi", "gpu", "gres", "tasks_per_gpu", "cpus_per_gpu")
MIN_HISTORY_RUNS = 3  # successful past runs of a rule before it counts as short

T = TypeVar("T")


def parse_patterns(value: str | None) -> tuple[str, ...]:
    """``--hybrid-bundle 'map_*,qc'`` -> ('map_*', 'qc')."""
    if not value:
        return ()
    patterns = tuple(p.strip() for p in value.split(",") if p.strip())
    for pattern in patterns:
        if "=" in pattern or any(c.isspace() for c in pattern):
            raise WorkflowError(
                f"--hybrid-bundle (profile key 'hybrid-bundle'): {pattern!r} is not a rule "
                "name or glob; give comma-separated rule names or shell-style globs, "
                "e.g. --hybrid-bundle 'qc_*,count'."
            )
    return patterns


def named(rule: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(rule, p) for p in patterns)


def unfit(resources: dict[str, object]) -> str | None:
    """Why a job with these resources needs an allocation of its own, or None."""
    for name in _OWN_ALLOCATION:
        value = resources.get(name)
        if value not in (None, "", 0, False):
            return f"resource {name}={value!r}"
    for name in ("nodes", "tasks", "tasks_per_node"):
        value = resources.get(name)
        if value not in (None, 1):
            return f"resource {name}={value!r}"
    return None


def short(wall_times: Sequence[float], threshold_s: float) -> bool:
    """Whether the rule's past runs say its jobs are short."""
    return (
        threshold_s > 0
        and len(wall_times) >= MIN_HISTORY_RUNS
        and statistics.median(wall_times) <= threshold_s
    )


@dataclass(frozen=True)
class Shape:
    """How big a bundle may grow, and what its allocation holds."""

    members: int  # most members in one bundle
    at_once: int  # members running at once in the allocation
    cpus: int
    mem_mb: int | None

    def waves(self, n: int) -> int:
        return math.ceil(n / self.at_once)

    def for_members(self, n: int) -> "Shape":
        """The allocation of a bundle of ``n`` members (fewer than ``members``: no
        more CPUs than they can use)."""
        at_once = max(1, min(self.at_once, n))
        cpus = self.cpus // self.at_once * at_once
        mem = None if self.mem_mb is None else self.mem_mb // self.at_once * at_once
        return Shape(n, at_once, cpus, mem)


def shape(
    threads: int,
    mem_mb: int | None,
    node_cpus: int | None,
    node_mem_mb: int | None,
    median_s: float | None,
    target_s: float,
    max_members: int,
) -> Shape:
    """Bundle size and allocation for jobs of ``threads`` CPUs and ``mem_mb`` each.

    At once: as many members as the node's CPUs (and memory) hold, at most
    ``max_members``. Members: enough waves of those to last ``target_s`` given the
    rule's median runtime, at most ``max_members``; without history,
    ``max_members``."""
    threads = max(1, threads)
    at_once = max(1, (node_cpus or threads) // threads)
    if mem_mb and node_mem_mb:
        at_once = max(1, min(at_once, node_mem_mb // mem_mb))
    at_once = min(at_once, max_members)
    if median_s is None:
        members = max_members
    else:
        waves = max(1, math.floor(target_s / max(median_s, 0.001)))
        members = min(max_members, waves * at_once)
    members = max(1, members)
    at_once = min(at_once, members)
    return Shape(members, at_once, at_once * threads, mem_mb * at_once if mem_mb else None)


def runtime_min(member_min: int | None, waves: int) -> int | None:
    """The time limit of a bundle whose members each ask ``member_min`` minutes."""
    return None if member_min is None else member_min * waves


@dataclass
class _Bucket(Generic[T]):
    since: float
    limit: int
    items: list[T] = field(default_factory=list)


Batch = tuple[Hashable, list[T]]  # a bundle's key and its jobs


class Collector(Generic[T]):
    """Ready jobs waiting for companions of the same key, at most ``fill_s``.

    ``add`` returns what must be submitted now (a full bucket); ``due`` what has
    waited long enough; each as (key, items). Not thread-safe: the caller holds a lock.
    """

    def __init__(self, fill_s: float) -> None:
        self.fill_s = fill_s
        self._buckets: dict[Hashable, _Bucket[T]] = {}

    def add(self, key: Hashable, item: T, limit: int, now: float) -> list[Batch[T]]:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(now, max(1, limit))
        bucket.items.append(item)
        if len(bucket.items) >= bucket.limit:
            del self._buckets[key]
            return [(key, bucket.items)]
        return []

    def due(self, now: float) -> list[Batch[T]]:
        ready = [k for k, b in self._buckets.items() if now - b.since >= self.fill_s]
        return [(k, self._buckets.pop(k).items) for k in ready]

    def peek(self, key: Hashable) -> list[T]:
        bucket = self._buckets.get(key)
        return list(bucket.items) if bucket else []

    def take(self, key: Hashable) -> list[Batch[T]]:
        """The items waiting under ``key`` (submitted early: no more will come)."""
        bucket = self._buckets.pop(key, None)
        return [(key, bucket.items)] if bucket else []

    def drain(self) -> list[Batch[T]]:
        items = list(self._buckets.items())
        self._buckets.clear()
        return [(k, b.items) for k, b in items]

    def next_due(self) -> float | None:
        """When the oldest bucket is due (None: nothing waits)."""
        return min((b.since + self.fill_s for b in self._buckets.values()), default=None)

    def __len__(self) -> int:
        return sum(len(b.items) for b in self._buckets.values())


def inner_args(
    targets: Sequence[object],
    rule: str,
    cores: int,
    attempt: int,
    unneeded_temp_files: Sequence[str] = (),
) -> str:
    """The job arguments of a bundle's inner Snakemake: every member a target job,
    ``--cores`` of the allocation, the members' common attempt, and
    ``--keep-going`` (one failing member does not stop the others). No
    ``--force-use-threads``: members run as they would in a group job."""
    from snakemake_interface_executor_plugins.utils import (
        encode_target_jobs_cli_args,
        format_cli_arg,
        join_cli_args,
    )

    return join_cli_args(
        [
            format_cli_arg("--target-jobs", encode_target_jobs_cli_args(list(targets))),
            format_cli_arg("--allowed-rules", [rule], quote=False),
            format_cli_arg("--cores", cores),
            format_cli_arg("--attempt", attempt),
            "--keep-going",
            format_cli_arg(
                "--unneeded-temp-files", sorted(unneeded_temp_files), skip=not unneeded_temp_files
            ),
        ]
    )
