"""Text that is not Unicode (lone surrogates, category Cs) is refused before anything
is stored, over REST and on the command line; text stored that way by an earlier
version can never make a gate's page, the list or the CLI unreadable."""

import json
import subprocess
import sys

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snakemake_human_gate import gate
from tests.integration.gateserver import GATE_CLI

SURROGATE = st.characters(categories=["Cs"])
# every category a client can send; lone surrogates (Cs) as often as all the others
# together. Joined from lists: st.text() drops almost every surrogate its alphabet draws
ANY_CHAR = SURROGATE | st.characters(categories=["L", "M", "N", "P", "S", "Z", "Cc"])
ANY_TEXT = st.lists(ANY_CHAR, max_size=8).map("".join)


def has_surrogate(value) -> bool:
    """Whether ``value`` still holds a lone surrogate once sent as JSON (a high and a
    low one next to each other make one valid character there)."""
    sent = json.loads(json.dumps(value))
    return any(0xD800 <= ord(c) <= 0xDFFF for c in json.dumps(sent, ensure_ascii=False))


CONTAINS_SURROGATE = st.tuples(ANY_TEXT, SURROGATE, ANY_TEXT).map("".join).filter(has_surrogate)
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
PLACES = ["choice", "field name", "field value", "comment", "gate"]
# alice's answers are votes that replace each other: the gate stays open to the end
SPEC = gate(
    "Ship?", fields={"note": gate.field(str, default="")}, approvers=["alice", "bob"], quorum=2
)


def body_with(text: str, place: str, gid: str, hook: bool) -> dict:
    body: dict = {"choice": "approve"}
    if place == "choice":
        body["choice"] = text
    elif place == "field name":
        body["fields"] = {text: 1}
    elif place == "field value":
        body["fields"] = {"note": text}
    elif place == "comment":
        body["comment"] = text
    if hook:
        body["gate"] = text if place == "gate" else gid
    return body


def readable_everywhere(server, gid: str) -> None:
    """The gate's page, the dashboard's list and the CLI's views all still work."""
    detail = server.get(f"/api/gates/{gid}")
    assert detail.status_code == 200, detail.text
    assert server.get("/api/gates?status=all").status_code == 200
    for args in (["show", gid], ["show", gid, "--json"], ["audit"], ["audit", "--json"]):
        run = subprocess.run(
            [*GATE_CLI, "--dir", str(server.store.root), *args], capture_output=True, timeout=60
        )
        assert run.returncode == 0 and b"Traceback" not in run.stderr, (args, run.stderr)


def test_a_lone_surrogate_anywhere_is_refused_with_422_and_nothing_is_stored(server):
    record = server.ask(SPEC)
    answers = server.store.answers_path(record.id)

    @PROPERTY
    @given(text=CONTAINS_SURROGATE, place=st.sampled_from(PLACES), hook=st.booleans())
    def check(text, place, hook):
        if place == "gate" and not hook:
            hook = True
        body = json.dumps(body_with(text, place, record.id, hook)).encode()
        assert has_surrogate(json.loads(body))  # really sent: a \\udXXX escape in the JSON
        path = "/hooks/decision" if hook else f"/api/gates/{record.id}/decision"
        answer = server.post(path, body)
        assert answer.status_code == 422, answer.text
        assert "Unicode" in answer.json()["detail"]
        assert answers.read_bytes() == b""

    check()
    readable_everywhere(server, record.id)
    assert server.store.get(record.id).votes == []


def test_any_text_is_answered_without_a_server_error(server):
    record = server.ask(SPEC)
    sent = {"with surrogates": 0, "accepted": 0}

    @PROPERTY
    @given(key=ANY_TEXT, note=ANY_TEXT, comment=ANY_TEXT, field=st.booleans())
    def check(key, note, comment, field):
        fields = {key: note} if field else {"note": note}
        body = {"choice": "approve", "fields": fields, "comment": comment}
        answer = server.decide(record.id, body)
        assert answer.status_code in (200, 422), answer.text
        if has_surrogate(body):
            sent["with surrogates"] += 1
            assert answer.status_code == 422, answer.text
        sent["accepted"] += answer.status_code == 200

    check()
    assert sent["with surrogates"] >= 50 and sent["accepted"] >= 10, sent
    readable_everywhere(server, record.id)


def test_text_stored_by_an_earlier_version_is_shown_not_fatal(server):
    """Lines written before the refusal existed, holding \\udc00 escapes."""
    record = server.ask(SPEC)
    vote = {"by": "alice", "choice": "approve", "fields": {"note": "x\udc00"}, "at": 1.0,
            "comment": "x \ud800", "via": "api@127.0.0.1"}  # fmt: skip
    line = json.dumps({"vote": vote, "decision": None}) + "\n"
    server.store.answers_path(record.id).write_text(line)
    with open(server.store.root / "audit.jsonl", "a") as log:
        entry = {"seq": 99, "event": "refused", "gate": record.id, "actor": "alice",
                 "ts": 1.0, "detail": "field '\udc00x' is not a field", "prev": "0"}  # fmt: skip
        log.write(json.dumps(entry) + "\n")
    readable_everywhere(server, record.id)
    shown = server.get(f"/api/gates/{record.id}").json()
    assert shown["votes"][0]["comment"] == "x \ufffd"  # the replacement character
    assert any(e.get("detail") == "field '\ufffdx' is not a field" for e in shown["audit"])


def test_the_cli_refuses_arguments_that_are_not_unicode(server):
    """Bytes that are not UTF-8 in argv reach Python as lone surrogates."""
    record = server.ask(SPEC)
    store = str(server.store.root).encode()
    cli = [sys.executable.encode(), b"-m", b"snakemake_human_gate", b"--dir", store]
    for extra in (
        [b"--comment", b"ok \xff"],
        [b"--set", b"note=\xfe"],
        [b"--set", b"\xfe=1"],
    ):
        run = subprocess.run(
            [*cli, b"approve", record.id.encode(), *extra], capture_output=True, timeout=60
        )
        assert run.returncode == 2, run.stderr
        assert b"not valid Unicode" in run.stderr and b"Traceback" not in run.stderr
    assert server.store.answers_path(record.id).read_bytes() == b""
