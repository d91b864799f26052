"""What a gate asks: question, choices, typed fields, who decides, timeout.

Pure data and validation; no I/O. A GateSpec is what ``gate(...)`` returns in a
Snakefile and what the store keeps with each pending gate.
"""

import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import InvalidInput
from .targets import parse_targets

FIELD_TYPES: dict[str, type] = {"float": float, "int": int, "str": str, "bool": bool}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str | int | float | None) -> float | None:
    """'90', '90s', '15m', '2h', '2d', '1w' -> seconds; None stays None."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise InvalidInput(
                f"timeout {value!r} is not a duration: use seconds or a number with "
                "s, m, h, d or w (e.g. '2d')"
            )
        seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    if seconds <= 0:
        raise InvalidInput(f"timeout must be positive, got {value!r}")
    return seconds


@dataclass(frozen=True)
class FieldSpec:
    """A typed value the decider fills in, optionally bounded."""

    type: str
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    default: Any = None  # a field with a default may be left out

    @property
    def required(self) -> bool:
        return self.default is None

    def convert(self, name: str, raw: Any) -> Any:
        """The value as its type; InvalidInput names the field and why."""
        kind = FIELD_TYPES[self.type]
        try:
            value = _convert(kind, raw)
        except (TypeError, ValueError, OverflowError):
            raise InvalidInput(f"field '{name}': {raw!r} is not a valid {self.type}") from None
        if kind is float and not math.isfinite(value):
            raise InvalidInput(f"field '{name}': {raw!r} is not a finite number")
        if self.min is not None and value < self.min:
            raise InvalidInput(f"field '{name}': {value!r} is below the minimum {self.min!r}")
        if self.max is not None and value > self.max:
            raise InvalidInput(f"field '{name}': {value!r} is above the maximum {self.max!r}")
        if self.choices is not None and value not in self.choices:
            raise InvalidInput(
                f"field '{name}': {value!r} is not one of {', '.join(map(repr, self.choices))}"
            )
        return value


def _convert(kind: type, raw: Any) -> Any:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "yes", "1", "on"):
            return True
        if text in ("false", "no", "0", "off"):
            return False
        raise ValueError(raw)
    if kind is int:
        if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
            raise ValueError(raw)
        return int(str(raw).strip()) if isinstance(raw, str) else int(raw)
    if kind is float:
        if isinstance(raw, bool):
            raise ValueError(raw)
        return float(raw)
    if not isinstance(raw, str):
        raise TypeError(raw)
    return raw


def field_spec(name: str, value: Any) -> FieldSpec:
    """Accept ``float``, ``"float"``, ``(float, lo, hi)`` or a FieldSpec."""
    if isinstance(value, FieldSpec):
        spec = value
    elif isinstance(value, (type, str)):
        spec = FieldSpec(_type_name(name, value))
    elif isinstance(value, tuple) and len(value) == 3:
        spec = FieldSpec(_type_name(name, value[0]), min=value[1], max=value[2])
    else:
        raise InvalidInput(
            f"field '{name}': give a type (float, int, str, bool), a (type, min, max) "
            f"tuple or gate.field(...), not {value!r}"
        )
    if spec.type not in FIELD_TYPES:
        raise InvalidInput(f"field '{name}': unknown type {spec.type!r}")
    if spec.type in ("str", "bool") and (spec.min is not None or spec.max is not None):
        raise InvalidInput(f"field '{name}': min and max apply to int and float fields only")
    return spec


def _type_name(name: str, kind: Any) -> str:
    for label, python_type in FIELD_TYPES.items():
        if kind is python_type or kind == label:
            return label
    raise InvalidInput(f"field '{name}': type must be float, int, str or bool, not {kind!r}")


@dataclass(frozen=True)
class GateSpec:
    question: str
    choices: tuple[str, ...] = ("approve", "reject")
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    timeout: float | None = None  # seconds
    on_timeout: str | None = None
    approvers: tuple[str, ...] | None = None  # None: anyone
    quorum: int = 1
    allow_self_approval: bool = True
    fail_on: tuple[str, ...] = ("reject",)
    notify: tuple[str, ...] = ()  # notification targets (targets.py), besides the global ones

    def __post_init__(self) -> None:
        if not self.question or not str(self.question).strip():
            raise InvalidInput("a gate needs a question")
        if not self.choices or len(set(self.choices)) != len(self.choices):
            raise InvalidInput(f"choices must be distinct and not empty, got {self.choices!r}")
        if self.quorum < 1:
            raise InvalidInput(f"quorum must be at least 1, got {self.quorum}")
        if self.approvers is not None and self.quorum > len(set(self.approvers)):
            raise InvalidInput(
                f"quorum {self.quorum} cannot be reached by {len(set(self.approvers))} approver(s)"
            )
        if (self.timeout is None) != (self.on_timeout is None):
            raise InvalidInput("timeout and on_timeout go together: give both or neither")
        if self.on_timeout is not None and self.on_timeout not in self.choices:
            raise InvalidInput(
                f"on_timeout {self.on_timeout!r} is not one of the choices {list(self.choices)}"
            )
        unknown = [c for c in self.fail_on if c not in self.choices]
        if unknown:
            raise InvalidInput(f"fail_on {unknown} are not among the choices {list(self.choices)}")
        parse_targets(self.notify, resolve=False)  # $NAME addresses are read when sent

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["fields"] = {name: asdict(spec) for name, spec in self.fields.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "GateSpec":
        fields = {
            name: FieldSpec(
                **{**spec, "choices": tuple(spec["choices"]) if spec.get("choices") else None}
            )
            for name, spec in data.get("fields", {}).items()
        }
        approvers = data.get("approvers")
        return cls(
            question=data["question"],
            choices=tuple(data.get("choices", ("approve", "reject"))),
            fields=fields,
            timeout=data.get("timeout"),
            on_timeout=data.get("on_timeout"),
            approvers=tuple(approvers) if approvers is not None else None,
            quorum=int(data.get("quorum", 1)),
            allow_self_approval=bool(data.get("allow_self_approval", True)),
            fail_on=tuple(data.get("fail_on", ("reject",))),
            notify=tuple(data.get("notify", ())),
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    def __str__(self) -> str:  # what {params.gate} gives in a shell command
        return self.dumps()

    def validate_values(
        self, choice: str, values: dict[str, Any], by_timeout: bool = False
    ) -> dict[str, Any]:
        """Typed field values for a decision; raises InvalidInput naming the field."""
        if choice not in self.choices:
            raise InvalidInput(f"choice {choice!r} is not one of {', '.join(self.choices)}")
        unknown = sorted(set(values) - set(self.fields))
        if unknown:
            known = ", ".join(self.fields) or "none"
            raise InvalidInput(
                f"field '{unknown[0]}' is not a field of this gate (fields: {known})"
            )
        typed = {}
        for name, spec in self.fields.items():
            if name in values:
                typed[name] = spec.convert(name, values[name])
            elif not spec.required:
                typed[name] = spec.default
            elif not by_timeout and choice not in self.fail_on:
                raise InvalidInput(f"field '{name}' is required (a {spec.type})")
        return typed
