"""Process trees on this machine, read from /proc (no I/O beyond it)."""

import os
import signal
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
