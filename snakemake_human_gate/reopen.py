"""Re-review: ``snakemake-gate reopen ID`` withdraws a gate's decision (or the question
of a gate still waiting) so that the next run asks again, and every job downstream of
the gate reruns on the new decision.

The gate is archived (audited as ``reopened``); its decision is removed from the output
of every job that waited for it (a file that does not hold this gate's decision is left
alone), and each of those outputs is marked (:mod:`.rerun`): under ``--executor hybrid``
the next run forces the gate's job and everything downstream of it. Under other
executors, the next run needs ``--forcerun OUTPUT``; the command says so.
"""

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .record import GateRecord
from .rerun import mark
from .signing import current_user
from .store import GateStore
from .storefs import UnsafeFile, open_regular

DECISION_LIMIT = 1 << 20


@dataclass
class Reopened:
    record: GateRecord  # as it was
    removed: list[str] = field(default_factory=list)  # outputs whose decision was removed
    kept: list[str] = field(default_factory=list)  # outputs left alone, and why


def reopen(store: GateStore, gid: str, *, actor: str | None = None) -> Reopened:
    actor = actor or current_user()
    record = store.archive(gid, "reopened", actor=actor)
    done = Reopened(record)
    now = time.time()
    for output in record.outputs:
        problem = _remove_decision(Path(output), gid)
        if problem is None:
            done.removed.append(output)
        elif problem:
            done.kept.append(f"{output}: {problem}")
        mark(store, output, gid, f"reopened by {actor}", now)
    return done


def _remove_decision(path: Path, gid: str) -> str | None:
    """Remove ``path`` if it holds the decision of gate ``gid``: None when removed, ""
    when there is nothing there, else why it was left."""
    try:
        with os.fdopen(open_regular(path), "rb") as f:
            data = json.loads(f.read(DECISION_LIMIT))
    except FileNotFoundError:
        return ""
    except (OSError, UnsafeFile, ValueError) as e:
        return f"not a gate decision ({e}); left as it is"
    if not isinstance(data, dict) or data.get("gate") != gid:
        return "holds no decision of this gate; left as it is"
    try:
        path.unlink()
    except OSError as e:
        return f"cannot remove it ({e.strerror}): remove it, or its run keeps the old decision"
    return None
