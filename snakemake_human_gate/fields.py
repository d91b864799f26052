"""Typed values a decider fills in: ``{"lr": float}``, ``(int, 1, 8)``, ``gate.field(...)``.

Pure data and validation; no I/O. A field definition that can never be satisfied (a
minimum above the maximum, a default or a choice out of bounds or of the wrong type) is
refused when the Snakefile is read, naming the field.

Values are converted two ways: from the command line (``--set lr=0.05``: text, parsed)
and from JSON (the REST API: ``strict``, JSON types only, so ``"0.05"`` is not a float).
"""

import math
from dataclasses import dataclass, replace
from typing import Any

from .errors import InvalidInput

FIELD_TYPES: dict[str, type] = {"float": float, "int": int, "str": str, "bool": bool}
_JSON_TYPES = {"float": "number", "int": "integer", "str": "string", "bool": "true or false"}


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

    def convert(self, name: str, raw: Any, strict: bool = False) -> Any:
        """The value as its type; InvalidInput names the field and why. ``strict``: ``raw``
        came from JSON and must have the field's JSON type (no text to parse)."""
        kind = FIELD_TYPES[self.type]
        if strict and not _json_typed(kind, raw):
            raise InvalidInput(
                f"field '{name}': {raw!r} is {_json_kind(raw)}, not a {self.type}: send a "
                f"JSON {_JSON_TYPES[self.type]}"
            )
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


def _json_typed(kind: type, raw: Any) -> bool:
    if kind is bool or isinstance(raw, bool):
        return kind is bool and isinstance(raw, bool)
    if kind is float:
        return isinstance(raw, int | float)
    if kind is int:
        return isinstance(raw, int) or (isinstance(raw, float) and raw.is_integer())
    return isinstance(raw, str)


def _json_kind(raw: Any) -> str:
    for kind, label in ((bool, "true/false"), (str, "a string"), (int | float, "a number")):
        if isinstance(raw, kind):
            return label
    return f"a {type(raw).__name__}"


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
    """Accept ``float``, ``"float"``, ``(float, lo, hi)`` or a FieldSpec, checked to be
    satisfiable; its bounds, choices and default are given the field's type."""
    if isinstance(value, FieldSpec):
        spec = replace(value, type=_type_name(name, value.type))
    elif isinstance(value, (type, str)):
        spec = FieldSpec(_type_name(name, value))
    elif isinstance(value, tuple) and len(value) == 3:
        spec = FieldSpec(_type_name(name, value[0]), min=value[1], max=value[2])
    else:
        raise InvalidInput(
            f"field '{name}': give a type (float, int, str, bool), a (type, min, max) "
            f"tuple or gate.field(...), not {value!r}"
        )
    return _checked(name, spec)


def _checked(name: str, spec: FieldSpec) -> FieldSpec:
    """``spec`` if some value can satisfy it (InvalidInput naming what cannot)."""
    if spec.type in ("str", "bool") and (spec.min is not None or spec.max is not None):
        raise InvalidInput(f"field '{name}': min and max apply to int and float fields only")
    for bound in ("min", "max"):
        value = getattr(spec, bound)
        if value is not None and not (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        ):
            raise InvalidInput(f"field '{name}': {bound} must be a finite number, not {value!r}")
    if spec.min is not None and spec.max is not None and spec.min > spec.max:
        raise InvalidInput(
            f"field '{name}': the minimum {spec.min!r} is above the maximum {spec.max!r}: "
            "no value could be given"
        )
    bounds = replace(spec, choices=None, default=None)
    choices = spec.choices
    if choices is not None:
        if not choices or len(set(choices)) != len(choices):
            raise InvalidInput(f"field '{name}': choices must be distinct and not empty")
        choices = tuple(_fits(name, bounds, c, "choice") for c in choices)
    default = spec.default
    if default is not None:
        default = _fits(name, replace(bounds, choices=choices), default, "default")
    return replace(spec, choices=choices, default=default)


def _fits(name: str, spec: FieldSpec, value: Any, what: str) -> Any:
    try:
        return spec.convert(name, value, strict=True)
    except InvalidInput as e:
        detail = str(e).removeprefix(f"field '{name}': ")
        raise InvalidInput(f"field '{name}': the {what} cannot be given: {detail}") from None


def _type_name(name: str, kind: Any) -> str:
    for label, python_type in FIELD_TYPES.items():
        if kind is python_type or kind == label:
            return label
    raise InvalidInput(f"field '{name}': type must be float, int, str or bool, not {kind!r}")
