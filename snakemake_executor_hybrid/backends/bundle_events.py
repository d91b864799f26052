"""The two files of a bundle: members that join late, and members' ends.

Events: the inner Snakemake of a bundle (``bundle_run``) appends a line to the
bundle's events file as each member ends there; the SLURM backend reads the new
lines in its status loop and reports each member to Snakemake then, not when the
bundle ends. A member is named by its rule and wildcards, as ``--target-jobs``
names it.

Members: while a bundle waits in SLURM's queue, jobs of its kind that become
ready join it (a line each in its members file) instead of forming bundles of
their own; the inner run takes them when it starts and marks the file started,
both under a lock of the file, after which nothing joins.
"""

import fcntl
import json
from collections.abc import Mapping
from dataclasses import dataclass

SUCCEEDED = "succeeded"
FAILED = "failed"


def member_key(rule: str, wildcards: Mapping[str, object]) -> str:
    """How a member is named in events: its rule and wildcards, canonical."""
    return json.dumps([rule, sorted((str(k), str(v)) for k, v in wildcards.items())])


@dataclass(frozen=True)
class MemberEvent:
    key: str
    state: str  # SUCCEEDED or FAILED
    wall_s: float | None = None  # from the start of the member in the inner run


def event_line(key: str, state: str, wall_s: float | None) -> str:
    """One line of the events file."""
    return json.dumps({"key": key, "state": state, "wall_s": wall_s}) + "\n"


def parse_events(text: str) -> tuple[list[MemberEvent], int]:
    """The events of the complete lines of ``text`` and how many characters they
    take (a last line without its newline is still being written: read it later).
    Lines that are not events are skipped."""
    end = text.rfind("\n") + 1
    events = []
    for line in text[:end].splitlines():
        try:
            data = json.loads(line)
            key, state = data["key"], data["state"]
        except (ValueError, KeyError, TypeError):
            continue
        if state not in (SUCCEEDED, FAILED) or not isinstance(key, str):
            continue
        wall = data.get("wall_s")
        events.append(MemberEvent(key, state, float(wall) if wall is not None else None))
    return events, end


class EventsReader:
    """Reads an events file as it grows (offsets in characters of UTF-8 text)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._offset = 0

    def new_events(self) -> list[MemberEvent]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return []
        text = data.decode(errors="replace")
        events, used = parse_events(text)
        self._offset += len(text[:used].encode())
        return events


_STARTED = json.dumps({"started": True})


def _locked_lines(path: str, append: str | None, start: bool) -> tuple[bool, list[str]]:
    """Under the file's lock: (whether it was started, its lines); then append
    ``append`` (if not started) or the started mark (``start``)."""
    with open(path, "a+", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        lines = [line for line in f.read().splitlines() if line.strip()]
        started = _STARTED in lines
        if not started and append is not None:
            f.write(append + "\n")
        if not started and start:
            f.write(_STARTED + "\n")
        f.flush()
        return started, lines


def join(path: str, target: str, temp_files: list[str]) -> bool:
    """Add a member (its ``--target-jobs`` item) to a bundle that has not started."""
    started, _ = _locked_lines(path, json.dumps({"target": target, "temp": temp_files}), False)
    return not started


def take_members(path: str) -> tuple[list[str], list[str]]:
    """The members that joined (targets, unneeded temp files); nothing joins after."""
    _, lines = _locked_lines(path, None, True)
    targets: list[str] = []
    temp: list[str] = []
    for line in lines:
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and isinstance(data.get("target"), str):
            targets.append(data["target"])
            temp += [str(t) for t in data.get("temp") or []]
    return targets, temp
