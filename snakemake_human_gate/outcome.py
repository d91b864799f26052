"""Turn a decided gate into its job's result: the output file, or a failure message."""

import json
from pathlib import Path

from .fsutil import write_atomic
from .record import GateRecord


def settle(record: GateRecord, output: str | None = None, file_mode: int = 0o644) -> str | None:
    """Write the decision to ``output`` (the waiting job's; by default the first asker's);
    return the failure message, if any.

    Choices listed in ``fail_on`` fail the gate job (its output is not written).
    """
    decision = record.decision
    assert decision is not None, "settle() needs a decided gate"
    if decision.choice in record.spec.fail_on:
        verb = "rejected" if decision.choice == "reject" else f"answered '{decision.choice}'"
        text = f"gate {record.id}: {verb} by {', '.join(decision.by)} at {decision.at}"
        return f"{text}: {decision.comment}" if decision.comment else text
    path = Path(output or record.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(decision.to_json(), indent=1) + "\n", file_mode)
    return None
