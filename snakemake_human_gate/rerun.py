"""Outputs whose gate must be asked again, together with every job downstream.

Snakemake on its own does not rerun a gate whose output is gone while the outputs
downstream of it exist ("Nothing to be done"), and a gate job that fails (a ``fail_on``
choice) leaves the outputs of an earlier decision looking current. So the store keeps a
mark for each such output: ``snakemake-gate reopen`` marks the outputs whose decision it
withdrew, and a gate job that ends on a ``fail_on`` choice marks its own. Under
``--executor hybrid`` every run forces the marked gate jobs of its DAG, with everything
downstream, as ``--forcerun FILE`` would (``snakemake_executor_hybrid.gates``): the gate
is asked again and the jobs downstream rerun on the new decision; a gate still rejected
fails every run. A mark goes once a decision asked after it was made is written to its
output.

``<store>/rerun/<SHA-256 of the output's path>.json``: ``{"output", "gate", "why", "at"}``,
reached like every store file (no links followed, regular files only).
"""

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .storefs import UnsafeFile, read_file, write_atomic
from .text import json_text

if TYPE_CHECKING:
    from .store import GateStore

DIRECTORY = "rerun"
LIMIT = 1 << 16


@dataclass(frozen=True)
class Mark:
    output: str
    gate: str
    why: str  # e.g. "reopened by alice", "rejected by bob"
    at: float


def _lock(store: "GateStore") -> contextlib.AbstractContextManager[None]:
    return store.tree.locked("locks", "rerun.lock", mode=store.file_mode)


def _name(output: str) -> str:
    return hashlib.sha256(os.fsencode(output)).hexdigest()[:32] + ".json"


def mark(store: "GateStore", output: str, gate: str, why: str, at: float) -> None:
    """Mark ``output`` (an absolute path): its gate is to be asked again."""
    data = json_text({"output": output, "gate": gate, "why": why, "at": at}).encode()
    name = _name(output)
    with _lock(store), store.tree.dir(DIRECTORY, create=store.dir_mode) as d:
        write_atomic(d, name, data, store.file_mode, store.tree.shown(DIRECTORY, name))


def marks(store: "GateStore") -> dict[str, Mark]:
    """Every mark, by output path (none when nothing was ever marked)."""
    found = {}
    try:
        with store.tree.dir(DIRECTORY) as d:
            for name in os.listdir(d):
                shown = store.tree.shown(DIRECTORY, name)
                with contextlib.suppress(FileNotFoundError, UnsafeFile, ValueError, KeyError):
                    data: dict[str, Any] = json.loads(read_file(d, name, shown, LIMIT))
                    item = Mark(
                        str(data["output"]), str(data["gate"]), str(data["why"]), float(data["at"])
                    )
                    if _name(item.output) == name:  # a mark is found under its own name only
                        found[item.output] = item
    except FileNotFoundError:
        pass
    return found


def clear(store: "GateStore", output: str, asked: float) -> bool:
    """Remove the mark of ``output`` if it was made before the gate was last ``asked``
    (a decision of that asking was written to it); whether there was one to remove."""
    name = _name(output)
    try:
        with _lock(store), store.tree.dir(DIRECTORY) as d:
            data = json.loads(read_file(d, name, store.tree.shown(DIRECTORY, name), LIMIT))
            if float(data.get("at", 0.0)) > asked:
                return False  # marked after this asking: a later reopen or rejection
            os.unlink(name, dir_fd=d)
            return True
    except (FileNotFoundError, UnsafeFile, ValueError, AttributeError):
        return False
