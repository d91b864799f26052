"""Process trees on this machine, read from /proc (no I/O beyond it)."""

import os
import signal
import time
from contextlib import suppress


def descendants(pid: int) -> list[int]:
    """All processes below ``pid``, read from /proc (empty where there is none)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # the command name (field 2) may hold spaces: split after ')'
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def terminate_tree(pid: int) -> None:
    """SIGTERM a job's process and everything it started (a shell's children
    would otherwise outlive it)."""
    for target in [*descendants(pid), pid]:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(target, signal.SIGTERM)


def _signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to a process group; False when the group has no process left."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def stop_group(pgid: int, grace: float) -> None:
    """SIGTERM a process group, and SIGKILL it if anything is still in it after
    ``grace`` seconds. A Snakemake stopped by SIGTERM may never exit: its handler takes
    the scheduler's lock, which its own main thread may hold when the signal arrives."""
    if not _signal_group(pgid, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _signal_group(pgid, 0):
            return
        time.sleep(0.05)
    _signal_group(pgid, signal.SIGKILL)
