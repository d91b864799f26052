"""What a job running on this machine uses: wall time, CPU time, peak memory.

One background thread samples every ``SAMPLE_SECONDS`` the process tree of each
running local job (its shell command, or its own process for spawned and group
jobs) from /proc: resident memory summed over the tree (its peak is the job's
peak) and CPU time (user + system, reaped children included). A podman or docker
container started by the job runs under ``conmon``, not under the job: it is found
through the client's ``--name`` and conmon's ``-n``, and counted from the
container's own accounting (its memory cgroup), else from its processes.

Sampling misses peaks shorter than the interval; a job shorter than it may
record no memory at all (the journal then says "unknown").
"""

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..backends.base import Usage

SAMPLE_SECONDS = 0.25
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
CONTAINER_CLIENTS = ("podman", "docker")
MB = 2**20  # as SLURM counts mem_mb: the journal's figures compare across backends


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    comm: str
    rss_bytes: int
    cpu_s: float  # own and reaped children's user + system time


def parse_stat(pid: int, text: str) -> Proc | None:
    """One /proc/PID/stat line (the command name may hold spaces and parentheses)."""
    head, _, rest = text.rpartition(")")
    fields = rest.split()
    if not head or len(fields) < 22:
        return None
    comm = head.partition("(")[2]
    ticks = sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return Proc(pid, int(fields[1]), comm, int(fields[21]) * PAGE, ticks / TICKS)


def snapshot(proc: Path = Path("/proc")) -> dict[int, Proc]:
    procs = {}
    for entry in os.listdir(proc):
        if entry.isdigit():
            try:
                parsed = parse_stat(int(entry), (proc / entry / "stat").read_text())
            except (OSError, ValueError):
                continue
            if parsed is not None:
                procs[parsed.pid] = parsed
    return procs


def tree(root: int, procs: dict[int, Proc]) -> list[Proc]:
    children: dict[int, list[int]] = {}
    for p in procs.values():
        children.setdefault(p.ppid, []).append(p.pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            found.append(procs[pid])
        todo.extend(children.get(pid, ()))
    return found


def option_value(argv: list[str], *names: str) -> str | None:
    """The value of ``--name X``, ``--name=X`` (or ``-n X``) in an argv."""
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def cgroup_rss(
    pid: int, proc: Path = Path("/proc"), sys: Path = Path("/sys/fs/cgroup")
) -> int | None:
    """Resident memory of the cgroup ``pid`` is in (v1 memory controller or v2), or None."""
    try:
        lines = (proc / str(pid) / "cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        keys: tuple[str, ...]
        if "memory" in controllers.split(","):
            stat, keys = sys / "memory" / path.lstrip("/") / "memory.stat", ("total_rss", "rss")
        elif controllers == "":
            stat, keys = sys / path.lstrip("/") / "memory.stat", ("anon",)
        else:
            continue
        try:
            values = dict(line.split() for line in stat.read_text().splitlines())
        except (OSError, ValueError):
            continue
        for key in keys:
            if key in values:
                return int(values[key])
    return None


@dataclass
class Measure:
    roots: Callable[[], list[int]]  # the job's current root processes
    started: float = field(default_factory=time.monotonic)
    peak_bytes: int = 0
    cpu_s: float = 0.0
    samples: int = 0

    def usage(self) -> Usage:
        return Usage(
            wall_s=round(time.monotonic() - self.started, 3),
            cpu_s=round(self.cpu_s, 3) if self.samples else None,
            mem_mb=round(self.peak_bytes / MB, 1) if self.samples else None,
        )


class Sampler:
    """Samples the process trees of the jobs being measured (one thread, lazily started)."""

    def __init__(self, interval: float = SAMPLE_SECONDS) -> None:
        self.interval = interval
        self._jobs: dict[object, Measure] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._cmdlines: dict[int, list[str]] = {}

    def start(self, key: object, roots: Callable[[], list[int]]) -> None:
        with self._lock:
            self._jobs[key] = Measure(roots)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="hybrid-usage", daemon=True)
                self._thread.start()
            self._wake.notify()

    def stop(self, key: object) -> Usage | None:
        with self._lock:
            measure = self._jobs.pop(key, None)
        return measure.usage() if measure else None

    def _run(self) -> None:
        while True:
            with self._lock:
                self._wake.wait_for(lambda: bool(self._jobs))
                jobs = list(self._jobs.values())
            self.sample(jobs)
            time.sleep(self.interval)

    def sample(self, jobs: list[Measure]) -> None:
        procs = snapshot()
        live = set(procs)
        self._cmdlines = {pid: argv for pid, argv in self._cmdlines.items() if pid in live}
        for measure in jobs:
            members: dict[int, Proc] = {}
            for root in measure.roots():
                members.update((p.pid, p) for p in tree(root, procs))
            if not members:
                continue
            rss = sum(p.rss_bytes for p in members.values())
            cpu = sum(p.cpu_s for p in members.values())
            for name in self._containers(list(members.values())):
                container_rss, container_cpu = self._container(name, procs)
                rss, cpu = rss + container_rss, cpu + container_cpu
            measure.peak_bytes = max(measure.peak_bytes, rss)
            measure.cpu_s = max(measure.cpu_s, cpu)
            measure.samples += 1

    def _cmdline(self, pid: int) -> list[str]:
        if pid not in self._cmdlines:
            try:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                return []
            self._cmdlines[pid] = raw.decode(errors="replace").split("\0")
        return self._cmdlines[pid]

    def _containers(self, members: list[Proc]) -> list[str]:
        names = []
        for p in members:
            if p.comm in CONTAINER_CLIENTS:
                name = option_value(self._cmdline(p.pid), "--name")
                if name:
                    names.append(name)
        return names

    def _container(self, name: str, procs: dict[int, Proc]) -> tuple[int, float]:
        """(resident bytes, CPU seconds) of the container ``name``, found through conmon."""
        for p in procs.values():
            if p.comm == "conmon" and option_value(self._cmdline(p.pid), "-n", "--name") == name:
                inside = [q for q in tree(p.pid, procs) if q.pid != p.pid]
                cpu = sum(q.cpu_s for q in inside)
                accounted = cgroup_rss(inside[0].pid) if inside else None
                if accounted is not None:
                    return accounted, cpu
                return sum(q.rss_bytes for q in inside), cpu
        return 0, 0.0
