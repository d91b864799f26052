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
