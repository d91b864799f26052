"""Member events of a bundle: one JSON line per member that finished (pure).

The inner Snakemake of a bundle (``bundle_run``) appends a line to the bundle's
events file as each member ends there; the SLURM backend reads the new lines in
its status loop and reports each member to Snakemake then, not when the bundle
ends. A member is named by its rule and wildcards, as ``--target-jobs`` names it.
"""

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
