"""The gate server over real HTTP: REST contract, authentication, refusals, one-click links.

Every test talks to a real uvicorn on a loopback port with ``requests``; gates are asked
through the store, as Snakemake asks them.
"""

import html
import json
import time
from urllib.parse import quote

import pytest
import requests

from snakemake_human_gate import gate
from snakemake_human_gate.auth import TokenStore
from snakemake_human_gate.signatures import SENDER_HEADER, sign_request_v1
from snakemake_human_gate.store import GateStore
from snakemake_human_gate.webhooks import WebhookSecrets
from tests.integration.gateserver import MAX_BODY, ask, audit, json_bytes, live_server


def snapshot(server) -> dict[str, bytes]:
    """Every gate record's bytes: a refusal must leave them as they were."""
    return {p.name: p.read_bytes() for p in sorted((server.store.root / "gates").iterdir())}


def refusals(entries: list[dict]) -> list[dict]:
    return [e for e in entries if e["event"] == "refused"]


# -- reading --------------------------------------------------------------------------


def test_me_names_the_tokens_user(server):
    assert server.get("/api/me").json() == {"user": "alice"}
    assert server.get("/api/me", user="bob").json() == {"user": "bob"}


def test_gate_view_has_the_contracts_shape(server):
    spec = gate(
        "Launch the full run?",
        choices=["approve", "retune", "reject"],
        fields={
            "lr": gate.field(float, min=1e-5, max=1.0, default=0.01),
            "note": str,
            "mode": gate.field(str, choices=["fast", "slow"], default="fast"),
        },
        timeout="2d",
        on_timeout="reject",
        approvers=["alice", "bob"],
    )
    files = {
        "plot.png": b"\x89PNG\r\n\x1a\nfake",
        "metrics.json": b'{"loss": 0.5}',
        "table.csv": b"a,b\n1,2\n",
        "notes.txt": b"looks fine",
        "model.bin": b"\x00\x01",
    }
    record = server.ask(spec, files=files)
    [view] = server.get("/api/gates").json()["gates"]
    assert view["id"] == record.id and view["rule"] == "review"
    assert view["wildcards"] == {"run": "1"} and view["question"] == "Launch the full run?"
    assert view["choices"] == ["approve", "retune", "reject"]
    assert sorted(view["fields"], key=lambda f: f["name"]) == [
        {"name": "lr", "type": "float", "choices": None, "min": 1e-5, "max": 1.0,
         "default": 0.01, "required": False},
        {"name": "mode", "type": "str", "choices": ["fast", "slow"], "min": None, "max": None,
         "default": "fast", "required": False},
        {"name": "note", "type": "str", "choices": None, "min": None, "max": None,
         "default": None, "required": True},
    ]  # fmt: skip
    assert view["approvers"] == ["alice", "bob"] and view["quorum"] == 1
    assert view["status"] == "pending" and view["decision"] is None and view["votes"] == []
    assert view["asked_at"].endswith("Z") and 0 <= view["waiting_seconds"] < 60
    assert view["timeout_at"].endswith("Z") and view["on_timeout"] == "reject"
    assert view["may_decide"] is True
    kinds = [(a["index"], a["name"], a["kind"], a["size"]) for a in view["artifacts"]]
    assert kinds == [
        (0, "plot.png", "image", 12),
        (1, "metrics.json", "json", 13),
        (2, "table.csv", "csv", 8),
        (3, "notes.txt", "text", 10),
        (4, "model.bin", "other", 2),
    ]
    first = view["artifacts"][0]
    assert first["path"] == str(server.workdir / "plot.png")
    assert first["url"] == f"https://gates.example.org/api/gates/{record.id}/artifacts/0"
    assert server.get("/api/gates", user="eve").json()["gates"][0]["may_decide"] is False


def test_list_filters_pending_decided_and_recent(server):
    waiting = server.ask(run="1")
    done = server.ask(run="2")
    old = server.ask(run="3")
    assert server.decide(done.id, {"choice": "approve"}).status_code == 200
    assert server.decide(old.id, {"choice": "reject"}).status_code == 200
    path = server.store.answers_path(old.id)  # decided eight days ago
    answer, ack = path.read_text().splitlines()
    data = json.loads(answer)
    data["decision"]["at"] = "2020-01-01T00:00:00Z"
    path.write_text(f"{json.dumps(data)}\n{ack}\n")

    def ids(status=None):
        query = f"?status={status}" if status else ""
        return [g["id"] for g in server.get(f"/api/gates{query}").json()["gates"]]

    assert ids() == ids("pending") == [waiting.id]
    assert ids("decided") == [done.id, old.id]
    assert ids("all") == [waiting.id, done.id]
    refused = server.get("/api/gates?status=bogus")
    assert refused.status_code == 422 and "status" in refused.json()["detail"]


def test_a_passed_timeout_is_applied_when_listed(server):
    record = server.ask(gate("Go?", timeout=0.01, on_timeout="reject"))
    time.sleep(0.05)
    [view] = server.get("/api/gates?status=decided").json()["gates"]
    assert view["id"] == record.id and view["status"] == "expired"
    assert view["decision"]["by"] == ["timeout"]


def test_one_gate_with_its_audit_history(server):
    record = server.ask()
    server.decide(record.id, {"choice": "approve", "comment": "fine"})
    detail = server.get(f"/api/gates/{record.id}").json()
    assert detail["status"] == "decided"
    assert detail["decision"]["by"] == ["alice"] and detail["decision"]["comment"] == "fine"
    assert [e["event"] for e in detail["audit"]] == ["asked", "decided"]
    assert detail["audit"][1]["via"] == "api@127.0.0.1"
    assert detail["votes"][0]["by"] == "alice" and detail["votes"][0]["comment"] == "fine"


def test_artifacts_are_served_by_index_with_type_and_digest(server):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    record = server.ask(files={"plot.png": png, "notes.txt": b"hi", "page.html": b"<script>"})
    answer = server.get(f"/api/gates/{record.id}/artifacts/0")
    assert answer.status_code == 200 and answer.content == png
    assert answer.headers["Content-Type"] == "image/png"
    assert answer.headers["X-Gate-Artifact-Sha256"] == record.inputs[0]["sha256"]
    assert "sandbox" in answer.headers["Content-Security-Policy"]
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    text = server.get(f"/api/gates/{record.id}/artifacts/1")
    assert text.headers["Content-Type"] == "text/plain; charset=utf-8"
    html = server.get(f"/api/gates/{record.id}/artifacts/2")  # never rendered by the browser
    assert html.headers["Content-Type"] == "application/octet-stream"
    assert html.headers["Content-Disposition"].startswith("attachment;")


def test_an_svg_is_an_image_but_only_a_download_when_opened(server):
    record = server.ask(files={"plot.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>"})
    svg = server.get(f"/api/gates/{record.id}/artifacts/0")
    assert svg.headers["Content-Type"] == "image/svg+xml"  # for the dashboard's <img>
    assert svg.headers["Content-Disposition"] == "attachment; filename*=UTF-8''plot.svg"
    assert svg.headers["Content-Security-Policy"].startswith("sandbox;")
    assert svg.headers["X-Content-Type-Options"] == "nosniff"


def test_changed_or_missing_artifacts_are_refused(server):
    record = server.ask(files={"a.json": b"{}", "b.json": b"[]"})
    (server.workdir / "a.json").write_bytes(b'{"changed": true}')
    (server.workdir / "b.json").unlink()
    changed = server.get(f"/api/gates/{record.id}/artifacts/0")
    assert changed.status_code == 409 and "changed since the gate was asked" in changed.text
    gone = server.get(f"/api/gates/{record.id}/artifacts/1")
    assert gone.status_code == 404
    reasons = [e["reason"] for e in refusals(audit(server.store))]
    assert reasons == ["artifact changed", "artifact gone"]


def test_artifacts_over_the_limit_are_not_served(server, monkeypatch):
    record = server.ask(files={"big.csv": b"a,b\n" * 10})
    monkeypatch.setattr("snakemake_human_gate.server.gates.MAX_ARTIFACT", 20)
    answer = server.get(f"/api/gates/{record.id}/artifacts/0")
    assert answer.status_code == 422 and "on the server" in answer.json()["detail"]
    assert refusals(audit(server.store))[-1]["reason"] == "artifact too large"


def test_a_corrupt_record_is_a_server_error_not_a_refusal(server):
    record = server.ask()
    server.store.path(record.id).write_text("{not json")
    answer = server.get(f"/api/gates/{record.id}")
    assert answer.status_code == 500 and answer.json()["reason"] == "bad-record"
    assert refusals(audit(server.store)) == []


# -- deciding ---------------------------------------------------------------------------


def test_decision_is_recorded_as_the_authenticated_user(server):
    record = server.ask(gate("Ship?", fields={"lr": float}))
    answer = server.decide(
        record.id, {"choice": "approve", "fields": {"lr": "0.05"}, "comment": "ok"}
    )
    assert answer.status_code == 200, answer.text
    view = answer.json()
    assert view["status"] == "decided" and view["may_decide"] is False
    assert view["decision"]["fields"] == {"lr": 0.05} and view["decision"]["by"] == ["alice"]
    decided = server.store.get(record.id).decision
    assert decided.by == ["alice"] and decided.comment == "ok"
    entry = audit(server.store)[-1]
    assert (entry["event"], entry["actor"], entry["via"]) == ("decided", "alice", "api@127.0.0.1")


def test_second_decision_is_409_and_changes_nothing(server):
    record = server.ask()
    assert server.decide(record.id, {"choice": "approve"}).status_code == 200
    before = snapshot(server)
    second = server.decide(record.id, {"choice": "reject"}, user="bob")
    assert second.status_code == 409 and second.json()["reason"] == "already-decided"
    assert "already decided: approve by alice" in second.json()["detail"]
    assert snapshot(server) == before
    last = audit(server.store)[-1]
    assert (last["event"], last["actor"], last["reason"]) == ("refused", "bob", "already decided")


def test_approvers_quorum_and_self_approval(server):
    spec = gate("Ship?", approvers=["alice", "bob", "runner"], quorum=2, allow_self_approval=False)
    record = server.ask(spec, requested_by="runner")
    eve = server.decide(record.id, {"choice": "approve"}, user="eve")
    assert eve.status_code == 403 and "eve may not decide" in eve.json()["detail"]
    runner = server.decide(record.id, {"choice": "approve"}, user="runner")
    assert runner.status_code == 403 and "self-approval" in runner.json()["detail"]
    first = server.decide(record.id, {"choice": "approve"})
    assert first.status_code == 200 and first.json()["status"] == "pending"
    assert [v["by"] for v in first.json()["votes"]] == ["alice"]
    second = server.decide(record.id, {"choice": "approve"}, user="bob")
    assert second.json()["status"] == "decided"
    assert second.json()["decision"]["by"] == ["alice", "bob"]
    events = [(e["event"], e["actor"], e.get("reason")) for e in audit(server.store)[1:]]
    assert events == [
        ("refused", "eve", "not an approver"),
        ("refused", "runner", "self-approval"),
        ("voted", "alice", None),
        ("decided", "bob", None),
    ]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"choice": "approve", "fields": {"lr": "fast"}}, "field 'lr'"),
        ({"choice": "approve", "fields": {"lr": 7}}, "field 'lr'"),
        ({"choice": "approve"}, "field 'lr' is required"),
        ({"choice": "approve", "fields": {"lr": 0.1, "momentum": 1}}, "field 'momentum'"),
        ({"choice": "approve", "fields": {"lr": [0.1]}}, "field 'lr'"),
        ({"choice": "approve", "fields": {"lr": 10**40}}, "field 'lr'"),
        ({"choice": "maybe"}, "choice 'maybe'"),
    ],
)
def test_invalid_values_are_422_naming_the_field(server, body, named):
    record = server.ask(gate("Ship?", fields={"lr": (float, 0, 1)}))
    before = snapshot(server)
    answer = server.decide(record.id, body)
    assert answer.status_code == 422 and named in answer.json()["detail"], answer.text
    assert snapshot(server) == before
    [refused] = refusals(audit(server.store))
    assert (refused["reason"], refused["gate"], refused["actor"]) == ("invalid", record.id, "alice")


def test_signed_webhook_decides_as_its_senders_user(server):
    record = server.ask()
    body = json_bytes({"gate": record.id, "choice": "approve", "comment": "from chat"})
    answer = server.post("/hooks/decision", body, user=None, headers=server.signed(body))
    assert answer.status_code == 200, answer.text
    assert answer.json()["decision"]["by"] == ["alice"]
    entry = audit(server.store)[-1]
    assert (entry["event"], entry["actor"]) == ("decided", "alice")
    assert entry["via"] == "webhook:chatbot@127.0.0.1"


def test_signed_request_works_on_the_rest_endpoint_too(server):
    record = server.ask()
    body = json_bytes({"choice": "reject"})
    answer = server.post(
        f"/api/gates/{record.id}/decision",
        body,
        user=None,
        headers=server.signed(body, path=f"/api/gates/{record.id}/decision"),
    )
    assert answer.status_code == 200 and answer.json()["decision"]["choice"] == "reject"


def test_replayed_signed_request_is_refused(server):
    record = server.ask()
    body = json_bytes({"gate": record.id, "choice": "approve"})
    headers = server.signed(body)
    assert server.post("/hooks/decision", body, user=None, headers=headers).status_code == 200
    replay = server.post("/hooks/decision", body, user=None, headers=headers)
    assert replay.status_code == 401  # the same signature again, within the window
    stale = server.signed(body, timestamp=time.time() - 3600)
    assert server.post("/hooks/decision", body, user=None, headers=stale).status_code == 401
    assert [e["auth"] for e in refusals(audit(server.store))] == ["replayed", "stale-timestamp"]


def test_a_replayed_vote_cannot_restore_a_changed_answer(server):
    record = server.ask(gate("Ship?", approvers=["alice", "bob"], quorum=2))
    first = json_bytes({"gate": record.id, "choice": "reject"})
    headers = server.signed(first)
    assert server.post("/hooks/decision", first, user=None, headers=headers).ok
    assert server.decide(record.id, {"choice": "approve"}).ok  # alice changes her vote
    replay = server.post("/hooks/decision", first, user=None, headers=headers)
    assert replay.status_code == 401
    assert [v.choice for v in server.store.get(record.id).votes] == ["approve"]


def test_a_signature_for_one_gate_does_not_decide_another(server):
    first, second = server.ask(run="1"), server.ask(run="2")
    body = json_bytes({"choice": "approve"})
    to_first = f"/api/gates/{first.id}/decision"
    headers = server.signed(body, path=to_first)
    moved = server.post(f"/api/gates/{second.id}/decision", body, user=None, headers=headers)
    assert moved.status_code == 401 and server.store.get(second.id).status == "pending"
    assert audit(server.store)[-1]["auth"] == "bad-signature"
    assert server.post(to_first, body, user=None, headers=headers).status_code == 200


def test_old_signatures_are_refused_with_their_reason(server):
    record = server.ask()
    body = json_bytes({"gate": record.id, "choice": "approve"})
    old = {SENDER_HEADER: "chatbot", **sign_request_v1(server.secret, body, int(time.time()))}
    answer = server.post("/hooks/decision", body, user=None, headers=old)
    assert answer.status_code == 401 and answer.json()["reason"] == "old-signature"
    assert "sign it 'v2='" in answer.json()["detail"]
    assert audit(server.store)[-1]["auth"] == "old-signature"
    assert server.store.get(record.id).status == "pending"


def test_old_signatures_count_on_the_hook_with_the_migration_setting(tmp_path):
    store = GateStore(tmp_path / "gates")
    first, second = ask(store, tmp_path, run="1"), ask(store, tmp_path, run="2")
    secret = WebhookSecrets(store.root, store.share).add("chatbot", "alice").encode()
    with live_server(store.root, accept_v1_signatures=True) as url:

        def post(path, body):
            headers = {
                SENDER_HEADER: "chatbot",
                "Content-Type": "application/json",
                **sign_request_v1(secret, body, int(time.time())),
            }
            return requests.post(url + path, data=body, headers=headers, timeout=30)

        hook = json_bytes({"gate": first.id, "choice": "approve"})
        assert post("/hooks/decision", hook).status_code == 200
        rest = post(f"/api/gates/{second.id}/decision", json_bytes({"choice": "approve"}))
        assert rest.status_code == 401 and rest.json()["reason"] == "old-signature"
    assert store.get(first.id).decision.by == ["alice"] and store.get(second.id).decision is None


def test_hook_body_names_an_unknown_or_bad_gate(server):
    for gid in ("review-000000000000", "../etc/passwd"):
        body = json_bytes({"gate": gid, "choice": "approve"})
        answer = server.post("/hooks/decision", body, user=None, headers=server.signed(body))
        assert answer.status_code == 404
    body = json_bytes({"choice": "approve"})
    answer = server.post("/hooks/decision", body, user=None, headers=server.signed(body))
    assert answer.status_code == 400 and "'gate'" in answer.json()["detail"]


# -- the security matrix ------------------------------------------------------------------


def _request(server, record, case):
    """Make the request of a matrix case; the answer."""
    gid = record.id
    body = json_bytes({"choice": "approve"})
    decision = f"/api/gates/{gid}/decision"
    if case == "no credentials":
        return server.decide(gid, body, user=None)
    if case == "wrong token":
        return server.post(
            decision, body, user=None, headers={"Authorization": "Bearer sgt_" + "A" * 43}
        )
    if case == "not a bearer token":
        return server.post(decision, body, user=None, headers={"Authorization": "Basic YTpi"})
    if case == "forged signature":
        forged = server.signed(body, path=decision, secret=b"guess")
        return server.post(decision, body, user=None, headers=forged)
    if case == "signature of another body":
        other = json_bytes({"choice": "reject"})
        return server.post(decision, body, user=None, headers=server.signed(other, path=decision))
    if case == "stale timestamp":
        headers = server.signed(body, path=decision, timestamp=time.time() - 301)
        return server.post(decision, body, user=None, headers=headers)
    if case == "future timestamp":
        headers = server.signed(body, path=decision, timestamp=time.time() + 3600)
        return server.post(decision, body, user=None, headers=headers)
    if case == "unknown sender":
        headers = {**server.signed(body, path=decision), SENDER_HEADER: "mallory"}
        return server.post(decision, body, user=None, headers=headers)
    if case == "non-approver":
        return server.decide(gid, body, user="eve")
    if case == "oversized body (token)":
        big = json_bytes({"choice": "approve", "comment": "x" * MAX_BODY})
        return server.decide(gid, big)
    if case == "oversized body (signed)":
        big = json_bytes({"choice": "approve", "comment": "x" * MAX_BODY})
        return server.post(decision, big, user=None, headers=server.signed(big, path=decision))
    if case == "malformed JSON":
        return server.decide(gid, b'{"choice": "approve"')
    if case == "not UTF-8":
        return server.decide(gid, b'{"choice": "\xff"}')
    if case == "JSON not an object":
        return server.decide(gid, b'["approve"]')
    if case == "NaN":
        return server.decide(gid, b'{"choice": "approve", "fields": {"x": NaN}}')
    if case == "unknown member":
        return server.decide(gid, {"choice": "approve", "actor": "bob"})
    if case == "unknown choice":
        return server.decide(gid, {"choice": "approve; rm -rf /"})
    if case == "deep nesting":
        return server.decide(gid, b"[" * 2000 + b"]" * 2000)
    if case == "unknown query parameter":
        return server.get(f"/api/gates/{gid}?debug=1")
    if case == "unknown query parameter on a decision":
        return server.post(f"/api/gates/{gid}/decision?choice=reject", body)
    if case.startswith("id "):
        return server.decide(case[3:], body)
    if case.startswith("artifact "):
        return server.get(f"/api/gates/{gid}/artifacts/{case.split()[1]}")
    raise AssertionError(case)


MATRIX = [
    # case, status, audit reason, audited actor (None: unknown)
    ("no credentials", 401, "unauthenticated", None),
    ("wrong token", 401, "unauthenticated", None),
    ("not a bearer token", 401, "unauthenticated", None),
    ("forged signature", 401, "unauthenticated", None),
    ("signature of another body", 401, "unauthenticated", None),
    ("stale timestamp", 401, "unauthenticated", None),
    ("future timestamp", 401, "unauthenticated", None),
    ("unknown sender", 401, "unauthenticated", None),
    ("non-approver", 403, "not an approver", "eve"),
    ("oversized body (token)", 413, "body too large", "alice"),
    ("oversized body (signed)", 413, "body too large", None),
    ("malformed JSON", 400, "malformed request", "alice"),
    ("not UTF-8", 400, "malformed request", "alice"),
    ("JSON not an object", 400, "malformed request", "alice"),
    ("NaN", 400, "malformed request", "alice"),
    ("unknown member", 400, "malformed request", "alice"),
    ("deep nesting", 400, "malformed request", "alice"),
    ("unknown choice", 422, "invalid", "alice"),
    ("unknown query parameter", 422, "invalid", "alice"),
    ("unknown query parameter on a decision", 422, "invalid", "alice"),
    ("id ..%2F..%2Fetc%2Fpasswd", 404, "no such path", "alice"),
    ("id ..", 404, "no such path", "alice"),  # normalised away by the client: /api/decision
    ("id %2e%2e", 404, "unknown gate", "alice"),
    ("id %00", 404, "unknown gate", "alice"),
    ("id review%00.json", 404, "unknown gate", "alice"),
    ("id r%C3%A9view-0123", 404, "unknown gate", "alice"),
    ("id %E2%80%AEreview", 404, "unknown gate", "alice"),
    ("id .hidden", 404, "unknown gate", "alice"),
    ("id review-000000000000", 404, "unknown gate", "alice"),
    ("id " + "a" * 300, 404, "unknown gate", "alice"),
    ("artifact 1", 404, "unknown artifact", "alice"),
    ("artifact -1", 404, "unknown artifact", "alice"),
    ("artifact 99999999999999999999", 404, "unknown artifact", "alice"),
    ("artifact x", 422, "invalid", "alice"),
    ("artifact ..%2F..%2Fetc%2Fpasswd", 404, "no such path", "alice"),
]


@pytest.mark.parametrize(("case", "status", "reason", "actor"), MATRIX, ids=[m[0] for m in MATRIX])
def test_refusals_answer_right_change_nothing_and_are_audited(server, case, status, reason, actor):
    record = server.ask(gate("Ship?", approvers=["alice", "bob"]))
    before, seen = snapshot(server), len(audit(server.store))
    answer = _request(server, record, case)
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"detail", "reason"}
    assert snapshot(server) == before
    new = audit(server.store)[seen:]
    assert [e["event"] for e in new] == ["refused"], new
    assert new[0]["reason"] == reason
    assert new[0]["actor"] == (actor or "(unknown)")
    assert "127.0.0.1" in new[0]["via"]
    if status == 401:
        assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert answer.json()["reason"] == "unauthenticated"  # all alike: nothing learnt
        assert new[0]["auth"]  # the audit log has the precise reason
    assert server.store.get(record.id).status == "pending"


def test_an_unknown_gate_is_404_without_the_stores_path(server):
    for answer in (
        server.get("/api/gates/review-000000000000"),
        server.decide("review-000000000000", {"choice": "approve"}),
    ):
        assert answer.status_code == 404
        assert "review-000000000000" in answer.json()["detail"]
        assert str(server.store.root) not in answer.text


def test_an_id_with_a_trailing_newline_is_not_an_id(server):
    record = server.ask()
    answer = server.get(f"/api/gates/{record.id}%0A")
    assert answer.status_code == 404 and "not a gate id" in answer.json()["detail"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_json_bodies_need_a_json_content_type(server, content_type):
    record = server.ask()
    body = json_bytes({"choice": "approve"})
    before, seen = snapshot(server), len(audit(server.store))
    headers = {"Content-Type": content_type}  # None: no Content-Type at all
    for path in (f"/api/gates/{record.id}/decision", "/hooks/decision"):
        answer = server.post(path, body, headers=headers)
        assert answer.status_code == 415, answer.text
        assert "Content-Type: application/json" in answer.json()["detail"]
    assert snapshot(server) == before
    assert [e["reason"] for e in audit(server.store)[seen:]] == ["unsupported media type"] * 2
    typed = server.post(
        f"/api/gates/{record.id}/decision",
        body,
        headers={"Content-Type": "Application/JSON; charset=utf-8"},
    )
    assert typed.status_code == 200, typed.text


def test_wrong_method_is_405_with_allow(server):
    record = server.ask()
    answer = requests.delete(
        f"{server.url}/api/gates/{record.id}/decision", headers=server.auth(), timeout=30
    )
    assert answer.status_code == 405 and answer.headers["Allow"] == "POST"
    assert refusals(audit(server.store))[-1]["reason"] == "method not allowed"


def test_unknown_paths_need_credentials_first(server):
    assert server.get("/api/nothing", user=None).status_code == 401
    assert server.get("/api/nothing").status_code == 404


def test_too_many_failures_lock_the_client_out(tmp_path):
    store = GateStore(tmp_path / "gates")
    token = TokenStore(store.root, store.share).create("alice")
    with live_server(store.root, max_failures=3, failure_window=60) as url:
        wrong = {"Authorization": "Bearer sgt_" + "B" * 43}
        for _ in range(3):
            assert requests.get(f"{url}/api/me", headers=wrong, timeout=30).status_code == 401
        for headers in (wrong, {"Authorization": f"Bearer {token}"}, wrong):
            locked = requests.get(f"{url}/api/me", headers=headers, timeout=30)
            assert locked.status_code == 429 and locked.json()["reason"] == "too-many-failures"
            assert 1 <= int(locked.headers["Retry-After"]) <= 60
        link = requests.get(f"{url}/l/anything", timeout=30)  # links count too
        assert link.status_code == 429
    reasons = [e["reason"] for e in refusals(list(store.audit.entries()))]
    assert reasons == ["unauthenticated"] * 3 + ["too many failures"]  # the lock-out: once


def test_answers_carry_security_headers(server):
    answer = server.get("/api/me")
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]


def test_openapi_schema_and_dashboard_are_published(server):
    schema = requests.get(f"{server.url}/openapi.json", timeout=30).json()
    assert {
        "/api/me",
        "/api/gates",
        "/api/gates/{gate_id}",
        "/api/gates/{gate_id}/artifacts/{index}",
        "/api/gates/{gate_id}/decision",
        "/hooks/decision",
        "/l/{token}",
    } <= set(schema["paths"])
    page = requests.get(server.url + "/", timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "<html" in page.text


# -- one-click links ----------------------------------------------------------------------


def test_link_get_shows_without_spending_and_post_decides_once(server):
    record = server.ask(gate("Ship <b>it</b>?", approvers=["alice"]))
    token = server.link(record.id, "approve")
    for _ in range(2):  # a mail scanner opening the link spends nothing
        page = requests.get(f"{server.url}/l/{token}", timeout=30)
        assert page.status_code == 200 and '<form method="post">' in page.text
        assert "Ship &lt;b&gt;it&lt;/b&gt;?" in page.text and "<b>it" not in page.text
        assert "alice" in page.text and record.id in page.text
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert page.headers["Referrer-Policy"] == "no-referrer"
    assert server.store.get(record.id).status == "pending"
    done = requests.post(f"{server.url}/l/{token}", timeout=30)
    assert done.status_code == 200 and "Recorded: approve" in done.text
    decided = server.store.get(record.id).decision
    assert decided.choice == "approve" and decided.by == ["alice"]
    entry = [e for e in audit(server.store) if e["event"] == "decided"][0]
    assert entry["via"] == "link@127.0.0.1"
    again = requests.post(f"{server.url}/l/{token}", timeout=30)
    assert again.status_code == 410 and "used already" in again.text
    last = refusals(audit(server.store))[-1]
    assert (last["reason"], last["link"], last["gate"]) == ("bad link", "used-link", record.id)
    shown = requests.get(f"{server.url}/l/{token}", timeout=30)
    assert shown.status_code == 409 and "Already decided" in shown.text


def test_expired_and_forged_links_are_refused(server):
    record = server.ask()
    expired = server.links.mint(record.id, "approve", "alice", ttl=60, now=time.time() - 120)
    for method in (requests.get, requests.post):
        assert method(f"{server.url}/l/{expired}", timeout=30).status_code == 410
    token = server.link(record.id, "reject")
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    for bad in (forged, "nonsense", "a.b", quote("é.x"), "x" * 3000):
        answer = requests.post(f"{server.url}/l/{bad}", timeout=30)
        assert answer.status_code == 403, bad
    assert server.store.get(record.id).status == "pending"
    links = [e["link"] for e in refusals(audit(server.store))]
    assert links[:2] == ["expired-link", "expired-link"]
    assert set(links[2:]) <= {"bad-link", "malformed-link"} and len(links) == 7


def test_a_link_decides_only_its_own_gate_and_action(server):
    a = server.ask(run="a")
    b = server.ask(run="b")
    token = server.link(a.id, "reject")
    assert requests.post(f"{server.url}/l/{token}", timeout=30).status_code == 200
    assert server.store.get(a.id).decision.choice == "reject"
    assert server.store.get(b.id).status == "pending"


def test_links_respect_approvers_and_need_no_fields_to_be_given(server):
    guarded = server.ask(gate("Ship?", approvers=["bob"]), run="guarded")
    refused = requests.post(f"{server.url}/l/{server.link(guarded.id)}", timeout=30)
    assert refused.status_code == 403 and "may not decide" in refused.text
    assert server.store.get(guarded.id).status == "pending"

    typed = server.ask(gate("Ship?", fields={"lr": float}), run="typed")
    token = server.link(typed.id, "approve")
    shown = requests.get(f"{server.url}/l/{token}", timeout=30)
    assert shown.status_code == 422 and "field 'lr' is required" in html.unescape(shown.text)
    assert f"https://gates.example.org/?gate={typed.id}" in shown.text
    assert requests.post(f"{server.url}/l/{token}", timeout=30).status_code == 422
    assert refusals(audit(server.store))[-1]["reason"] == "needs fields"
    rejected = requests.post(f"{server.url}/l/{server.link(typed.id, 'reject')}", timeout=30)
    assert rejected.status_code == 200  # rejecting needs no values
    assert server.store.get(typed.id).decision.choice == "reject"
