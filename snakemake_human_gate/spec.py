"""What a gate asks: question, choices, typed fields, who decides, timeout, reminders and
escalation.

Pure data and validation; no I/O. A GateSpec is what ``gate(...)`` returns in a
Snakefile and what the store keeps with each pending gate. A definition that cannot work
is refused when it is made (InvalidInput naming the option).
"""

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import InvalidInput
from .fields import FIELD_TYPES, FieldSpec, field_spec
from .targets import parse_targets

__all__ = ["FIELD_TYPES", "Escalation", "FieldSpec", "GateSpec", "field_spec", "parse_duration"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# a user name, or @group: no spaces, commas or colons (those make targets and lists)
_DECIDER = re.compile(r"@?[A-Za-z0-9_.][A-Za-z0-9_.@-]{0,63}")


def parse_duration(value: str | int | float | None, what: str = "timeout") -> float | None:
    """'90', '90s', '15m', '2h', '2d', '1w' -> seconds; None stays None."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise InvalidInput(
                f"{what} {value!r} is not a duration: use seconds or a number with "
                "s, m, h, d or w (e.g. '2d')"
            )
        seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    if seconds <= 0:
        raise InvalidInput(f"{what} must be positive, got {value!r}")
    return seconds


def deciders(value: str | Iterable[str] | None, what: str = "approvers") -> tuple[str, ...] | None:
    """``approvers`` as given: a list of user names and ``@group``s (one name alone is a
    list of one); None (anyone) stays None."""
    if value is None:
        return None
    names = (value,) if isinstance(value, str) else tuple(value)
    for name in names:
        if not isinstance(name, str) or not _DECIDER.fullmatch(name):
            listed = ", ".join(repr(n.strip()) for n in str(name).replace(",", " ").split())
            raise InvalidInput(
                f"{what}: {name!r} is not a user name or @group; give a list of names, "
                f"e.g. {what}=[{listed or repr('alice')}]"
            )
    if not names:
        raise InvalidInput(f"{what} is empty: nobody could decide (None lets anyone decide)")
    return names


@dataclass(frozen=True)
class Escalation:
    """After ``after`` seconds without a decision: the users and @groups in ``to`` may
    decide too, and the targets in ``to`` (``slack:...``, ``email:...``) are told."""

    after: float
    to: tuple[str, ...]

    @property
    def deciders(self) -> tuple[str, ...]:
        return tuple(t for t in self.to if ":" not in t)

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(t for t in self.to if ":" in t)

    @classmethod
    def parse(cls, value: Mapping[str, Any] | None) -> "Escalation | None":
        """``{"after": "1d", "to": ["@leads", "email:boss@example.org"]}``."""
        if value is None:
            return None
        if not isinstance(value, Mapping) or set(value) != {"after", "to"}:
            raise InvalidInput(
                f"escalate must be {{'after': DURATION, 'to': [USERS, @GROUPS or TARGETS]}}, "
                f"not {value!r}"
            )
        after = parse_duration(value["after"], "escalate 'after'")
        assert after is not None
        to = value["to"]
        to = (to,) if isinstance(to, str) else tuple(to)
        if not to:
            raise InvalidInput("escalate 'to' is empty: name deciders to add or targets to tell")
        targets = [t for t in to if isinstance(t, str) and ":" in t]
        parse_targets(targets, "escalate 'to'", resolve=False)
        people = deciders([t for t in to if t not in targets] or None, "escalate 'to'") or ()
        return cls(after, (*people, *targets))


@dataclass(frozen=True)
class GateSpec:
    question: str
    choices: tuple[str, ...] = ("approve", "reject")
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    timeout: float | None = None  # seconds
    on_timeout: str | None = None
    approvers: tuple[str, ...] | None = None  # None: anyone; user names and @groups
    quorum: int = 1
    allow_self_approval: bool = True
    fail_on: tuple[str, ...] = ("reject",)
    notify: tuple[str, ...] = ()  # notification targets (targets.py), besides the global ones
    remind: float | None = None  # seconds between reminders while it waits
    escalate: Escalation | None = None

    def __post_init__(self) -> None:
        if not self.question or not str(self.question).strip():
            raise InvalidInput("a gate needs a question")
        if not self.choices or len(set(self.choices)) != len(self.choices):
            raise InvalidInput(f"choices must be distinct and not empty, got {self.choices!r}")
        if self.quorum < 1:
            raise InvalidInput(f"quorum must be at least 1, got {self.quorum}")
        people = deciders(self.approvers)
        if people and not any(p.startswith("@") for p in people) and self.quorum > len(set(people)):
            raise InvalidInput(
                f"quorum {self.quorum} cannot be reached by {len(set(people))} approver(s)"
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
        self._check_timing()

    def _check_timing(self) -> None:
        """Reminders and escalation that would never happen are mistakes."""
        timeout = self.timeout
        if self.remind is not None and timeout is not None and self.remind >= timeout:
            raise InvalidInput(
                f"remind every {self.remind:g} s: the gate times out after {timeout:g} s, "
                "before the first reminder"
            )
        escalation = self.escalate
        if escalation is None:
            return
        if timeout is not None and escalation.after >= timeout:
            raise InvalidInput(
                f"escalate after {escalation.after:g} s: the gate times out after "
                f"{timeout:g} s, before that"
            )
        if escalation.deciders and self.approvers is None:
            raise InvalidInput(
                f"escalate 'to' adds deciders ({', '.join(escalation.deciders)}), but anyone "
                "may decide this gate already: name its approvers"
            )

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
        escalate = data.get("escalate")
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
            remind=data.get("remind"),
            escalate=Escalation(escalate["after"], tuple(escalate["to"])) if escalate else None,
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))

    def __str__(self) -> str:  # what {params.gate} gives in a shell command
        return self.dumps()

    def changes(self, other: "GateSpec") -> list[str]:
        """The options whose values differ between this definition and ``other``."""
        mine, theirs = self.to_json(), other.to_json()
        return [name for name in mine if mine[name] != theirs.get(name)]

    def validate_values(
        self, choice: str, values: Mapping[str, Any], by_timeout: bool = False, strict: bool = False
    ) -> dict[str, Any]:
        """Typed field values for a decision; raises InvalidInput naming the field.
        ``strict``: the values came from JSON and must have their fields' JSON types."""
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
                typed[name] = spec.convert(name, values[name], strict)
            elif not spec.required:
                typed[name] = spec.default
            elif not by_timeout and choice not in self.fail_on:
                raise InvalidInput(f"field '{name}' is required (a {spec.type})")
        return typed
