import json
import re

import pytest

from snakemake_human_gate import gate
from snakemake_human_gate.errors import InvalidInput
from snakemake_human_gate.spec import GateSpec, parse_duration


def test_durations():
    assert parse_duration("2d") == 172800
    assert parse_duration("15m") == 900
    assert parse_duration(90) == 90
    assert parse_duration(None) is None
    with pytest.raises(InvalidInput, match="not a duration"):
        parse_duration("two days")
    with pytest.raises(InvalidInput, match="positive"):
        parse_duration("0s")


def test_gate_builds_a_spec_that_round_trips_through_json():
    spec = gate(
        "Launch?",
        choices=["approve", "retune", "reject"],
        fields={"lr": float, "n": (int, 1, 8)},
        timeout="2d",
        on_timeout="reject",
        approvers=["alice", "bob"],
        quorum=2,
        allow_self_approval=False,
    )
    assert spec.timeout == 172800 and spec.fields["n"].max == 8
    assert GateSpec.from_json(spec.to_json()) == spec
    assert str(spec) == spec.dumps()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"choices": []}, "choices"),
        ({"choices": ["a", "a"]}, "distinct"),
        ({"timeout": "1h"}, "timeout and on_timeout go together"),
        ({"timeout": "1h", "on_timeout": "maybe"}, "on_timeout 'maybe'"),
        ({"quorum": 3, "approvers": ["a", "b"]}, "quorum 3 cannot be reached"),
        ({"fields": {"lr": list}}, "field 'lr'"),
        ({"fail_on": ["nope"]}, "fail_on"),
        ({"fields": {"tag": gate.field(str, min=0)}}, "min and max apply to int and float"),
    ],
)
def test_bad_gate_definitions_name_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gate("Q?", **kwargs)


def test_values_are_typed_and_checked_by_field():
    spec = gate(
        "Q?",
        choices=["approve", "retune", "reject"],
        fields={"lr": gate.field(float, min=0, max=1), "arch": gate.field(str, choices=["a", "b"])},
    )
    assert spec.validate_values("approve", {"lr": "0.5", "arch": "a"}) == {"lr": 0.5, "arch": "a"}
    for values, message in [
        ({"lr": "fast", "arch": "a"}, "field 'lr': 'fast' is not a valid float"),
        ({"lr": "2", "arch": "a"}, "field 'lr': 2.0 is above the maximum 1"),
        ({"lr": "nan", "arch": "a"}, "field 'lr': 'nan' is not a finite number"),
        ({"lr": 10**400, "arch": "a"}, "is not a valid float"),  # too large for a float
        ({"lr": "0.1", "arch": "c"}, "field 'arch': 'c' is not one of"),
        ({"arch": "a"}, "field 'lr' is required"),
        ({"lr": "0.1", "arch": "a", "x": "1"}, "field 'x' is not a field of this gate"),
    ]:
        with pytest.raises(InvalidInput) as err:
            spec.validate_values("approve", values)
        assert message in str(err.value)
    with pytest.raises(InvalidInput, match="choice 'ship' is not one of approve, retune, reject"):
        spec.validate_values("ship", {})
    assert spec.validate_values("reject", {}) == {}  # a rejection needs no values


def test_int_and_bool_fields_refuse_lossy_values():
    spec = gate("Q?", fields={"n": int, "go": bool})
    assert spec.validate_values("approve", {"n": "3", "go": "yes"}) == {"n": 3, "go": True}
    with pytest.raises(InvalidInput, match="field 'n'"):
        spec.validate_values("approve", {"n": "3.5", "go": "yes"})
    with pytest.raises(InvalidInput, match="field 'go'"):
        spec.validate_values("approve", {"n": "3", "go": "maybe"})


def test_defaults_fill_in_and_make_a_field_optional():
    spec = gate("Q?", fields={"lr": gate.field(float, default=0.01)})
    assert spec.validate_values("approve", {}) == {"lr": 0.01}


def test_approvers_given_as_one_name_are_one_approver_not_its_letters():
    assert gate("Q?", approvers="alice").approvers == ("alice",)
    with pytest.raises(ValueError, match=r"approvers=\['alice', 'bob'\]"):
        gate("Q?", approvers="alice, bob")
    with pytest.raises(ValueError, match="approvers is empty"):
        gate("Q?", approvers=[])
    assert gate("Q?", approvers=["@ml-leads"], quorum=3).quorum == 3  # a group: any size


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"n": (int, 10, 1)}, "field 'n': the minimum 10 is above the maximum 1"),
        ({"lr": gate.field(float, min=0, max=1, default=5)}, "the default cannot be given: 5.0"),
        ({"lr": gate.field(float, default="fast")}, "the default cannot be given: 'fast'"),
        ({"n": gate.field(int, choices=[1, 2.5])}, "the choice cannot be given: 2.5"),
        ({"n": gate.field(int, min=0, max=4, choices=[3, 9])}, "9 is above the maximum 4"),
        ({"tag": gate.field(str, choices=[])}, "choices must be distinct and not empty"),
        ({"n": (int, "a", 3)}, "min must be a finite number"),
        ({"x": gate.field(float, max=float("nan"))}, "max must be a finite number"),
    ],
)
def test_fields_that_no_value_could_satisfy_are_refused_when_defined(fields, message):
    with pytest.raises(ValueError, match=message):
        gate("Q?", fields=fields)


def test_defaults_and_choices_take_their_fields_type():
    spec = gate("Q?", fields={"lr": gate.field(float, max=1, default=1), "n": (int, 1, 8)})
    assert spec.fields["lr"].default == 1.0 and isinstance(spec.fields["lr"].default, float)
    assert spec.validate_values("approve", {"n": 2}) == {"lr": 1.0, "n": 2}


def test_json_values_must_have_their_fields_json_type():
    spec = gate("Q?", fields={"lr": float, "n": int, "go": bool, "tag": str})
    good = {"lr": 1, "n": 3.0, "go": False, "tag": "x"}
    assert spec.validate_values("approve", good, strict=True) == {
        "lr": 1.0,
        "n": 3,
        "go": False,
        "tag": "x",
    }
    for name, value, message in [
        ("lr", "0.05", "field 'lr': '0.05' is a string, not a float: send a JSON number"),
        ("n", "3", "field 'n': '3' is a string, not a int"),
        ("n", 2.5, "field 'n': 2.5 is a number, not a int"),
        ("go", "yes", "field 'go': 'yes' is a string, not a bool: send a JSON true or false"),
        ("lr", True, "field 'lr': True is true/false, not a float"),
        ("tag", 5, "field 'tag': 5 is a number, not a str"),
    ]:
        with pytest.raises(InvalidInput, match=re.escape(message)):
            spec.validate_values("approve", {**good, name: value}, strict=True)
    assert spec.validate_values("approve", {**good, "lr": "0.05"})["lr"] == 0.05  # the CLI


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"remind": "3d", "timeout": "2d", "on_timeout": "reject"}, "before the first reminder"),
        ({"remind": "soon"}, "remind 'soon' is not a duration"),
        ({"escalate": {"after": "1d"}}, "escalate must be"),
        ({"escalate": {"after": "1d", "to": []}, "approvers": ["a"]}, "escalate 'to' is empty"),
        ({"escalate": {"after": "1d", "to": ["@leads"]}}, "anyone may decide this gate already"),
        (
            {"escalate": {"after": "3d", "to": ["bob"]}, "approvers": ["a"], "timeout": "1d",
             "on_timeout": "reject"},
            "times out after 86400 s, before that",
        ),
        ({"escalate": {"after": "1d", "to": ["slack:not a url"]}}, "escalate 'to'"),
    ],
)  # fmt: skip
def test_reminders_and_escalations_that_cannot_happen_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gate("Q?", **kwargs)


def test_reminders_and_escalation_round_trip_and_changes_are_named():
    spec = gate(
        "Q?",
        approvers=["alice"],
        remind="4h",
        escalate={"after": "1d", "to": ["@leads", "carol", "email:boss@example.org"]},
    )
    assert spec.remind == 14400 and spec.escalate.after == 86400
    assert spec.escalate.deciders == ("@leads", "carol")
    assert spec.escalate.targets == ("email:boss@example.org",)
    assert GateSpec.from_json(json.loads(spec.dumps())) == spec
    tighter = gate("Q2?", approvers=["bob"], remind="4h", escalate=spec.escalate.__dict__)
    assert spec.changes(tighter) == ["question", "approvers"]
    assert spec.changes(spec) == []
