"""The decision body parser: any bytes give a request, a 400 or a 422, never a crash."""

import json
import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from snakemake_human_gate import gate
from snakemake_human_gate.errors import InvalidInput
from snakemake_human_gate.server.payload import (
    DecisionRequest,
    MalformedRequest,
    parse_body,
    parse_named_body,
)
from snakemake_human_gate.server.security import classify

SPEC = gate(
    "Ship?",
    choices=["approve", "retune", "reject"],
    fields={
        "lr": gate.field(float, min=1e-5, max=1.0, default=0.01),
        "epochs": (int, 1, 100),
        "note": str,
        "fast": gate.field(bool, default=False),
        "mode": gate.field(str, choices=["a", "b"], default="a"),
    },
)
PROPERTY = settings(max_examples=300, deadline=None)

# text of every category, lone surrogates (Cs) as often as the rest: st.text() would drop them
texts = st.lists(st.characters(categories=["Cs"]) | st.characters(codec="utf-8"), max_size=12).map(
    "".join
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)


def parse_decision(raw: bytes, spec=SPEC) -> DecisionRequest:
    """What the server does with a body: its shape here, then the gate's own check (the
    store's, under the gate's lock): JSON types only."""
    request = parse_body(raw)
    typed = spec.validate_values(request.choice, request.fields, strict=True)
    return DecisionRequest(request.choice, typed, request.comment)


def not_unicode(value) -> bool:
    """Whether ``value`` sent as JSON still holds a lone surrogate."""
    sent = json.dumps(json.loads(json.dumps(value)), ensure_ascii=False)
    return any(0xD800 <= ord(c) <= 0xDFFF for c in sent)


def outcome(raw: bytes) -> str:
    """'ok', or the HTTP status of the refusal; anything else raised fails the test."""
    try:
        parse_decision(raw, SPEC)
    except (MalformedRequest, InvalidInput) as e:
        return str(classify(e)[0])
    return "ok"


@PROPERTY
@given(raw=st.binary(max_size=2048))
def test_arbitrary_bytes_never_crash(raw):
    assert outcome(raw) in ("ok", "400", "422")


@PROPERTY
@given(value=json_values)
def test_arbitrary_json_never_crashes(value):
    result = outcome(json.dumps(value).encode())
    assert result in ("ok", "400", "422")
    if not_unicode(value):
        assert result == "422"


@PROPERTY
@given(
    choice=st.sampled_from(SPEC.choices) | texts,
    values=st.dictionaries(
        st.sampled_from([*SPEC.fields, "other"]) | texts, json_values, max_size=6
    ),
    comment=texts,
)
@example(choice="reject", values={}, comment="\ud800\udc00")  # a surrogate pair: one character
def test_decision_shaped_bodies_are_accepted_or_refused_naming_the_problem(choice, values, comment):
    body = {"choice": choice, "fields": values, "comment": comment}
    raw = json.dumps(body).encode()
    try:
        request = parse_decision(raw, SPEC)
    except MalformedRequest as e:
        pytest.fail(f"a decision-shaped body is not malformed: {e}")
    except InvalidInput as e:
        message = str(e)
        if not_unicode(body):
            assert "not valid Unicode text" in message
        else:
            assert message.startswith(("field '", "choice ")), message
        return
    assert not not_unicode(body)
    # what the JSON text means: json.dumps writes a Python string holding a surrogate pair
    # as two escapes, which JSON reads as the one character they encode
    assert request.choice in SPEC.choices
    assert request.comment == json.loads(json.dumps(comment))
    assert set(request.fields) <= set(SPEC.fields)
    for name, value in request.fields.items():
        expected = {"float": float, "int": int, "str": str, "bool": bool}[SPEC.fields[name].type]
        assert type(value) is expected
        if expected is float:
            assert math.isfinite(value)


@PROPERTY
@given(
    lr=st.floats(min_value=1e-5, max_value=1.0),
    epochs=st.integers(1, 100),
    note=st.text(max_size=100),
    comment=st.text(max_size=100),
)
def test_valid_decisions_round_trip(lr, epochs, note, comment):
    body = {"choice": "approve", "fields": {"lr": lr, "epochs": epochs, "note": note}}
    request = parse_decision(json.dumps({**body, "comment": comment}).encode(), SPEC)
    assert request == DecisionRequest(
        "approve",
        {"lr": lr, "epochs": epochs, "note": note, "fast": False, "mode": "a"},
        comment,
    )


@PROPERTY
@given(gid=st.text(max_size=300) | texts, value=json_values)
def test_named_bodies_give_the_gate_or_a_400(gid, value):
    body = {"gate": gid, "choice": "approve", "fields": {"x": value}}
    raw = json.dumps(body).encode()
    try:
        named, request = parse_named_body(raw)
    except MalformedRequest as e:
        assert len(gid) > 200, e
    except InvalidInput as e:
        if not_unicode(body):
            assert "not valid Unicode text" in str(e)
        else:
            assert str(e).startswith("field 'x'")
    else:
        assert named == json.loads(json.dumps(gid)) and request.choice == "approve"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[" * 100_000, "nested too deeply"),
        (b'{"choice": NaN}', "not valid JSON"),
        (b'{"choice": "approve", "fields": {"lr": Infinity}}', "not valid JSON"),
        (b'{"choice": 1' + b"0" * 5000 + b"}", "not valid JSON"),  # over int's digit limit
        (b'"approve"', "must be a JSON object"),
        (b"{}", "no 'choice'"),
        (b'{"choice": ["approve"]}', "'choice' must be a string"),
        (b'{"choice": "approve", "fields": []}', "'fields' must be an object"),
        (b'{"choice": "approve", "comment": 5}', "'comment' must be a string"),
        (b'{"choice": "approve", "by": "alice"}', "unknown member 'by'"),
        (b'{"choice": "approve", "gate": "g"}', "unknown member 'gate'"),
        (json.dumps({"choice": "a" * 201}).encode(), "longer than 200"),
        (json.dumps({"choice": "approve", "comment": "c" * 10_001}).encode(), "longer than"),
    ],
)
def test_malformed_bodies_say_what_is_wrong(raw, message):
    with pytest.raises(MalformedRequest, match=message):
        parse_body(raw)


def test_a_number_beyond_a_float_is_not_finite():
    with pytest.raises(InvalidInput, match="field 'lr': inf is not a finite number"):
        parse_body(b'{"choice": "approve", "fields": {"lr": 1e400}}')


@pytest.mark.parametrize(
    "raw",
    [
        b'{"choice": "approve", "fields": {"\\udc00x": 1}}',
        b'{"choice": "approve", "comment": "x \\ud800"}',
        b'{"choice": "\\udfff"}',
        b'{"choice": "approve", "fields": {"note": "\\ud83d"}}',
    ],
)
def test_lone_surrogates_are_invalid_text_not_malformed(raw):
    with pytest.raises(InvalidInput, match="not valid Unicode text"):
        parse_body(raw)
    assert parse_body(b'{"choice": "approve", "comment": "\\ud83d\\ude00"}').comment == "\U0001f600"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"lr": 10**30}, "field 'lr'"),
        ({"epochs": 10**30}, "field 'epochs': 1000000000000000000"),
        ({"lr": None}, "field 'lr'"),
        ({"lr": {"value": 1}}, "field 'lr'"),
        ({"lr": 2.0}, "field 'lr': 2.0 is above the maximum"),
        ({"epochs": 1.5}, "field 'epochs'"),
        ({"note": 5}, "field 'note'"),
        ({"mode": "c"}, "field 'mode'"),
        ({"unknown": 1}, "field 'unknown' is not a field"),
    ],
)
def test_invalid_values_name_the_field(fields, message):
    raw = json.dumps({"choice": "approve", "fields": {"note": "n", "epochs": 2, **fields}})
    with pytest.raises(InvalidInput, match=message):
        parse_decision(raw.encode(), SPEC)


def test_unknown_choice_and_missing_required_fields_are_invalid():
    with pytest.raises(InvalidInput, match="choice 'ship' is not one of"):
        parse_decision(b'{"choice": "ship"}', SPEC)
    with pytest.raises(InvalidInput, match="field 'epochs' is required"):
        parse_decision(b'{"choice": "approve", "fields": {"note": "n"}}', SPEC)
    assert parse_decision(b'{"choice": "reject"}', SPEC).fields["lr"] == 0.01  # fail_on


def test_named_body_needs_the_gate():
    gid, request = parse_named_body(b'{"gate": "review-1", "choice": "approve"}')
    assert gid == "review-1" and request == DecisionRequest("approve")
    with pytest.raises(MalformedRequest, match="no 'gate'"):
        parse_named_body(b'{"choice": "approve"}')
