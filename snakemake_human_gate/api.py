"""What a Snakefile uses: ``gate(...)`` to mark a rule, ``decision(path)`` to read it.

from snakemake_human_gate import gate, decision

checkpoint review:
    input: "metrics.json"
    output: "gates/review.json"
    params: gate=gate("Ship it?", fields={"lr": float})
    shell: gate.AWAIT
"""

import json
import shlex
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import InvalidInput
from .record import Decision
from .spec import Escalation, FieldSpec, GateSpec, deciders, field_spec, parse_duration


class _Gate:
    """``gate(...)`` builds a GateSpec; ``gate.AWAIT`` is the shell command that waits.

    Under ``--executor hybrid`` a gated rule never runs its shell command: the
    executor asks, holds no resources, and writes the decision itself. Under any
    other executor ``gate.AWAIT`` runs ``snakemake-gate await`` as a light waiting
    process (it holds one job slot while it waits).
    """

    AWAIT = (
        f"{shlex.quote(sys.executable)} -m snakemake_human_gate await {{output[0]:q}}"
        " --rule {rule} --wildcards={wildcards:q} --spec {params.gate:q} --inputs {input:q}"
    )

    def __call__(
        self,
        question: str,
        choices: Iterable[str] = ("approve", "reject"),
        fields: Mapping[str, Any] | None = None,
        timeout: str | float | None = None,
        on_timeout: str | None = None,
        approvers: str | Iterable[str] | None = None,
        quorum: int = 1,
        allow_self_approval: bool = True,
        fail_on: Iterable[str] = ("reject",),
        notify: str | Iterable[str] = (),
        remind: str | float | None = None,
        escalate: Mapping[str, Any] | None = None,
    ) -> GateSpec:
        """``approvers``: user names and ``@group``s (None: anyone); ``remind``: repeat the
        notification this often while it waits; ``escalate``: ``{"after": "1d", "to":
        [users, @groups, targets]}``. See docs/gates.md."""
        try:
            return GateSpec(
                question=question,
                choices=tuple(choices),
                fields={name: field_spec(name, kind) for name, kind in (fields or {}).items()},
                timeout=parse_duration(timeout),
                on_timeout=on_timeout,
                approvers=deciders(approvers),
                quorum=quorum,
                allow_self_approval=allow_self_approval,
                fail_on=tuple(fail_on),
                notify=(notify,) if isinstance(notify, str) else tuple(notify),
                remind=parse_duration(remind, "remind"),
                escalate=Escalation.parse(escalate),
            )
        except InvalidInput as e:
            raise ValueError(f"gate({question!r}): {e}") from None

    @staticmethod
    def field(
        type: Any,
        min: float | None = None,
        max: float | None = None,
        choices: Iterable[Any] | None = None,
        default: Any = None,
    ) -> FieldSpec:
        """A typed field with bounds, allowed values or a default (checked by ``gate()``,
        which knows the field's name)."""
        try:
            spec = field_spec("field", type)
        except InvalidInput as e:
            raise ValueError(f"gate.field: {e}") from None
        return FieldSpec(
            spec.type, min, max, tuple(choices) if choices is not None else None, default
        )


gate = _Gate()


def decision(path: str | Path) -> Decision:
    """The decision a gate wrote to its output (``.choice``, ``.fields``, ``.by``, ...)."""
    try:
        return Decision.from_json(json.loads(Path(path).read_text()))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: no decision yet; read it only in rules that take the gate's output "
            "as input (or through checkpoints.<rule>.get())"
        ) from None
    except (ValueError, KeyError) as e:
        raise ValueError(f"{path} is not a gate decision: {e}") from None


def decided(path: str, field: str | None = None) -> Callable[..., Any]:
    """A params function: the gate's choice (or one of its fields) once decided.

    For rules that take the gate's output as input (``path`` may hold wildcards):

        params: lr=decided("gates/review_{run}.json", "lr")

    Snakemake evaluates params while it builds the DAG, before the gate has
    decided; until then this yields Snakemake's "to be determined" placeholder,
    and the real value when the job runs. (Branching on the choice needs a
    checkpoint: see ``decision``.)
    """

    def param(wildcards: Any) -> Any:
        target = Path(path.format(**dict(wildcards.items())))
        if not target.exists():
            from snakemake_executor_hybrid import compat  # Snakemake's internals

            return compat.to_be_determined()
        found = decision(target)
        return found.choice if field is None else found.fields[field]

    return param


def find_gate(params: Any) -> GateSpec | None:
    """The GateSpec among a job's params, if the rule is gated."""
    for value in params:
        if isinstance(value, GateSpec):
            return value
    return None
