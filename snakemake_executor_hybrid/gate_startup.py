"""What the hybrid executor does about gates when a run starts, and says when it ends.

- Gate outputs marked for a rerun (``snakemake_human_gate.rerun``: reopened, or ended
  on a ``fail_on`` choice) make their gate job and everything downstream run, as
  ``--forcerun OUTPUT`` would.
- Gates decided under an earlier definition than the Snakefile's are reported (their
  decisions stand).
- The summary printed when the run stops because only gates wait.
"""

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from snakemake_interface_common.exceptions import WorkflowError

from snakemake_human_gate.api import find_gate
from snakemake_human_gate.errors import GateError
from snakemake_human_gate.record import GateRecord, timestamp
from snakemake_human_gate.rerun import clear, marks
from snakemake_human_gate.store import GateStore

from . import compat, compat_scheduler


def _decision(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def force_marked(workflow: Any, store: GateStore, jobs: Iterable[Any], logger: Any) -> None:
    """Rerun (with everything downstream) the gate jobs whose output is marked."""
    found = marks(store)
    if not found:
        return
    forced = []
    for job in jobs:
        output = Path(job.output[0]).absolute()
        item = found.get(str(output))
        if item is None:
            continue
        decision = _decision(output) if output.exists() else None
        if decision is not None and timestamp(str(decision.get("at")), 0.0) >= item.at:
            clear(store, str(output), item.at)  # decided again since: the mark is spent
            continue
        if output.exists():  # the withdrawn decision is still there: plans used it
            output.unlink()
            raise WorkflowError(
                f"Gate output {job.output[0]} still held the decision withdrawn when gate "
                f"{item.gate} was {item.why}; it is removed now. Run Snakemake again: the "
                "jobs that read it are planned anew."
            )
        forced.append(job)
        logger.info(
            f"gate {item.gate} was {item.why}: asking again; jobs downstream of "
            f"{job.output[0]} run again on the new decision"
        )
    if forced:
        compat_scheduler.force_rerun(workflow, forced)


def report_redefined(store: GateStore, jobs: Iterable[Any], logger: Any) -> None:
    """Warn (once per rule) about decisions the run uses that were made under an earlier
    definition than the Snakefile's."""
    found: dict[str, list[tuple[str, list[str]]]] = {}
    for job in jobs:
        output = Path(job.output[0])
        decision = _decision(output) if output.exists() else None
        spec = find_gate(compat.rule_params(job))
        if decision is None or spec is None or not isinstance(decision.get("gate"), str):
            continue
        try:
            record = store.get(decision["gate"])
        except (GateError, OSError):
            continue
        changed = record.spec.changes(spec)
        if changed and record.decision is not None:
            found.setdefault(job.rule.name, []).append((record.id, changed))
    for rule, gates in found.items():
        gid, changed = gates[0]
        others = f" (and {len(gates) - 1} more gates of rule {rule})" if len(gates) > 1 else ""
        logger.warning(
            f"gate {gid}{others} was decided under an earlier definition (changed: "
            f"{', '.join(changed)}); its decision stands. To ask again: "
            f"snakemake-gate --dir {store.root} reopen {gid}"
        )


def wildcards(record: GateRecord) -> str:
    return ", ".join(f"{k}={v}" for k, v in record.wildcards.items())


def summary(records: list[GateRecord], root: Path, status: int) -> str:
    """What the run says when it stops because only gates wait; ``status`` is 75, or 1
    when a job failed too (under ``--keep-going``)."""
    lines = [f"Every remaining job waits on a human ({len(records)} gate(s)); stopping."]
    for record in records:
        who = ", ".join(record.spec.approvers) if record.spec.approvers else "anyone"
        where = f" [{wildcards(record)}]" if record.wildcards else ""
        lines.append(f"  {record.id}{where}: {record.spec.question} (decides: {who})")
    why = "a job failed" if status == 1 else "gates wait"
    lines.append(
        f"Decide with 'snakemake-gate --dir {root} list', then rerun Snakemake: decided "
        f"gates are not asked again. Exit status {status}: {why}."
    )
    return "\n".join(lines)
