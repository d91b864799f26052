"""Read a decision request body: JSON bytes in, a checked request or a refusal out.

Pure functions, no I/O. Bodies are parsed by pydantic's JSON parser, which (unlike
Python's) refuses strings that are not Unicode: a lone surrogate escape such as
``"\\udc00"``. Two kinds of refusal:

- :class:`MalformedRequest` (HTTP 400): the bytes are not a decision request at all
  (not UTF-8 JSON, not an object, a member missing or of the wrong type, an unknown
  member, too deeply nested);
- :class:`~snakemake_human_gate.errors.InvalidInput` (HTTP 422): a well-formed request
  the gate refuses (a string that is not Unicode text, a choice it does not offer, a
  field it does not have, a value of the wrong type, out of bounds or not finite); the
  message names the field.
"""

import json
import math
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import from_json

from ..errors import GateError, InvalidInput
from ..spec import GateSpec
from ..text import is_unicode

MAX_TEXT = 10_000  # characters of a comment
MAX_NAME = 200  # characters of a choice, a field name or a gate id
_MAX_INT = 2**63  # beyond this an int field value is refused (float() would overflow)
MEMBERS = {"choice", "fields", "comment"}


class MalformedRequest(GateError):
    """The body is not a decision request (HTTP 400)."""

    exit_code = 2


@dataclass(frozen=True)
class DecisionRequest:
    choice: str
    fields: dict[str, Any] = field(default_factory=dict)
    comment: str = ""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_object(raw: bytes) -> dict[str, Any]:
    """The JSON object in ``raw``; MalformedRequest for anything else, InvalidInput for
    a string that is not Unicode text."""
    try:
        data = from_json(raw, allow_inf_nan=False)
    except ValueError as e:
        raise _unreadable(raw, e) from None
    if not isinstance(data, dict):
        raise MalformedRequest(
            f'the body must be a JSON object like {{"choice": "approve"}}, '
            f"not {type(data).__name__}"
        )
    return data


def _unreadable(raw: bytes, error: ValueError) -> GateError:
    """Why the parser refused ``raw``, for people: not UTF-8, too deep, not JSON, or (what
    Python's own parser would let through) a lone surrogate in a string."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return MalformedRequest("the body is not UTF-8 text")
    if "recursion limit" in str(error):
        return MalformedRequest("the body is nested too deeply")
    try:
        lenient = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # JSONDecodeError, NaN/Infinity, over-long integers
        return MalformedRequest(f"the body is not valid JSON: {error}")
    if not is_unicode(json.dumps(lenient, ensure_ascii=False)):
        return InvalidInput(
            "a string in the body is not valid Unicode text: it holds a lone surrogate "
            "(\\uD800-\\uDFFF escapes are allowed only as pairs)"
        )
    return MalformedRequest(f"the body is not valid JSON: {error}")


def parse_body(raw: bytes) -> DecisionRequest:
    """The request's members, checked for shape only (not against a gate)."""
    return _members(read_object(raw), MEMBERS)


def parse_named_body(raw: bytes) -> tuple[str, DecisionRequest]:
    """``{"gate": ID, ...}``: the gate named and the request, checked for shape only."""
    data = read_object(raw)
    request = _members(data, MEMBERS | {"gate"})
    return _text(data, "gate", MAX_NAME, required=True), request


def _members(data: dict[str, Any], allowed: set[str]) -> DecisionRequest:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise MalformedRequest(
            f"unknown member {unknown[0][:MAX_NAME]!r}: a decision has {', '.join(sorted(allowed))}"
        )
    choice = _text(data, "choice", MAX_NAME, required=True)
    comment = _text(data, "comment", MAX_TEXT, required=False)
    values = data.get("fields", {})
    if not isinstance(values, dict):
        raise MalformedRequest("'fields' must be an object of field name to value")
    for name, value in values.items():
        _check_value(name, value)
    return DecisionRequest(choice=choice, fields=values, comment=comment)


def _text(data: dict[str, Any], member: str, limit: int, *, required: bool) -> str:
    if member not in data:
        if required:
            raise MalformedRequest(f"the body has no {member!r}")
        return ""
    value = data[member]
    if not isinstance(value, str):
        raise MalformedRequest(f"{member!r} must be a string, not {type(value).__name__}")
    if len(value) > limit:
        raise MalformedRequest(f"{member!r} is longer than {limit} characters")
    return value


def _check_value(name: str, value: Any) -> None:
    """A field value is a JSON scalar (the gate's spec then converts it)."""
    shown = name[:MAX_NAME]
    if isinstance(value, dict | list) or value is None:
        raise InvalidInput(f"field '{shown}': give a number, a string or true/false")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _MAX_INT:
        raise InvalidInput(f"field '{shown}': {str(value)[:20]}... is out of range")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"field '{shown}': {value} is not a finite number")


def check_decision(request: DecisionRequest, spec: GateSpec) -> DecisionRequest:
    """The request with its field values typed by the gate; InvalidInput naming the field."""
    try:
        typed = spec.validate_values(request.choice, request.fields)
    except (TypeError, OverflowError) as e:  # a value the spec's bounds cannot compare
        raise InvalidInput(f"a field value does not fit the gate's fields: {e}") from None
    return DecisionRequest(request.choice, typed, request.comment)

