"""The gate server's plain parts: views, pages, URLs, refusal mapping, options."""

import logging
import time

import pytest

from snakemake_human_gate import gate
from snakemake_human_gate.auth import AuthError, FailureLimiter, TokenStore, TooManyFailures
from snakemake_human_gate.errors import Conflict, InvalidInput, NotPermitted, UnknownGate
from snakemake_human_gate.server.pages import Page, render
from snakemake_human_gate.server.payload import MalformedRequest
from snakemake_human_gate.server.security import (
    UNKNOWN_ACTOR,
    ArtifactChanged,
    BodyTooLarge,
    Guard,
    Refused,
    classify,
    known_id,
)
from snakemake_human_gate.server.urls import artifact_path, link_url, page_url
from snakemake_human_gate.server.views import artifact_kind, gate_view, may_decide, media_type
from snakemake_human_gate.signatures import Target
from snakemake_human_gate.webhooks import WebhookSecrets


@pytest.mark.parametrize(
    ("name", "kind", "media"),
    [
        ("plot.PNG", "image", "image/png"),
        ("a.jpeg", "image", "image/jpeg"),
        ("drawing.svg", "image", "image/svg+xml"),
        ("m.json", "json", "application/json"),
        ("t.tsv", "csv", "text/tab-separated-values; charset=utf-8"),
        ("run.log", "text", "text/plain; charset=utf-8"),
        ("page.html", "other", "application/octet-stream"),
        ("script.js", "other", "application/octet-stream"),
        ("noext", "other", "application/octet-stream"),
    ],
)
def test_artifact_kinds_and_types(name, kind, media):
    assert (artifact_kind(name), media_type(name)) == (kind, media)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (TooManyFailures(3), 429),
        (AuthError("x", "bad-token"), 401),
        (MalformedRequest("x"), 400),
        (BodyTooLarge("x"), 413),
        (UnknownGate("x"), 404),
        (ArtifactChanged("x"), 409),
        (Conflict("x"), 409),
        (NotPermitted("x"), 403),
        (InvalidInput("x"), 422),
    ],
)
def test_refusals_map_to_statuses(error, status):
    assert classify(error)[0] == status


def test_known_ids_only():
    assert known_id("review-0123456789ab") == "review-0123456789ab"
    assert known_id("../x") is None and known_id("") is None and known_id("a\x00") is None


def test_urls():
    assert link_url("https://g.example.org/", "abc.def") == "https://g.example.org/l/abc.def"
    assert link_url(None, "t") == "/l/t"
    assert page_url("https://x/gates", "r-1") == "https://x/gates/?gate=r-1"
    assert artifact_path("r-1", 2) == "/api/gates/r-1/artifacts/2"


def test_pages_escape_everything():
    page = Page(
        200,
        "<script>alert(1)</script>",
        ("a & b",),
        (("Q", '"quoted"'),),
        button="<b>Go</b>",
        action='x" onclick="evil',
        dashboard='https://x/?gate=a"><script>',
    )
    html = render(page)
    assert "<script>" not in html and "<b>" not in html and 'onclick="' not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "a &amp; b" in html


def test_may_decide_follows_approvers_self_approval_and_status(store, tmp_path):
    (tmp_path / "m.json").write_text("{}")
    spec = gate("Go?", approvers=["alice", "runner"], allow_self_approval=False)
    record, _ = store.ask(
        rule="r", wildcards={}, inputs=[tmp_path / "m.json"], output=tmp_path / "o", spec=spec,
        requested_by="runner",
    )  # fmt: skip
    assert [may_decide(record, u) for u in ("alice", "runner", "eve")] == [True, False, False]
    view = gate_view(record, "alice", "https://g.example.org")
    assert view["artifacts"][0]["url"].startswith("https://g.example.org/api/gates/r-")
    decided = store.decide(record.id, "approve", actor="alice")
    assert not may_decide(decided, "alice")


ME = Target("GET", "/api/me")


def guard(store, max_failures=2):
    return Guard(
        store,
        TokenStore(store.root, store.share),
        WebhookSecrets(store.root, store.share),
        FailureLimiter(max_failures, 60),
    )


def test_guard_names_token_users_and_counts_failures(store):
    token = TokenStore(store.root, store.share).create("alice")
    g = guard(store)
    caller = g.authenticate({"authorization": f"bearer {token}"}, b"", "10.0.0.1", ME)
    assert (caller.user, caller.via) == ("alice", "api@10.0.0.1")
    for _ in range(2):
        with pytest.raises(Refused) as refused:
            g.authenticate({"Authorization": "Bearer nope"}, b"", "10.0.0.2", ME)
        assert refused.value.status == 401
    for _ in range(3):  # locked out, even with a good token; audited once
        with pytest.raises(Refused) as refused:
            g.authenticate({"Authorization": f"Bearer {token}"}, b"", "10.0.0.2", ME)
        assert refused.value.status == 429 and refused.value.headers["Retry-After"]
    assert g.authenticate({"Authorization": f"Bearer {token}"}, b"", "10.0.0.1", ME).user == "alice"
    entries = [e for e in store.audit.entries() if e["event"] == "refused"]
    assert [(e["reason"], e["client"]) for e in entries] == [
        ("unauthenticated", "10.0.0.2"),
        ("unauthenticated", "10.0.0.2"),
        ("too many failures", "10.0.0.2"),
    ]
    assert {e["actor"] for e in entries} == {UNKNOWN_ACTOR}


def test_guard_refuses_a_too_large_body_after_naming_the_user(store):
    token = TokenStore(store.root, store.share).create("alice")
    g = guard(store)
    with pytest.raises(Refused) as refused:
        g.authenticate({"Authorization": f"Bearer {token}"}, None, "10.0.0.1", ME)
    assert refused.value.status == 413
    [entry] = store.audit.entries()
    assert (entry["actor"], entry["reason"]) == ("alice", "body too large")


def test_guard_lockout_memory_is_bounded(store, monkeypatch):
    monkeypatch.setattr("snakemake_human_gate.server.security._FORGET_LOCKOUTS_AT", 5)
    g = guard(store, max_failures=1)
    now = time.time()
    for n in range(20):
        g.limiter.record_failure(f"c{n}", now)
        with pytest.raises(Refused):
            g.check_limit(f"c{n}", now)
    assert len(g._lockouts) <= 5


def test_serve_options_are_checked(tmp_path):
    from snakemake_human_gate.server.run import AppOptions, ServeOptions, check

    app = AppOptions(str(tmp_path))
    assert check(ServeOptions(app)) == []
    warnings = check(ServeOptions(app, host="0.0.0.0"))
    assert "plain HTTP on 0.0.0.0" in warnings[0]
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    for options, message in [
        (ServeOptions(app, tls_cert=str(cert)), "go together"),
        (ServeOptions(app, tls_cert=str(cert), tls_key=str(tmp_path / "no")), "no such file"),
        (ServeOptions(app, workers=0), "at least 1"),
        (ServeOptions(AppOptions(str(tmp_path), public_url="gates.example.org")), "public-url"),
        (ServeOptions(AppOptions(str(tmp_path), max_body=0)), "max-body"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            check(options)


def test_access_log_never_shows_link_tokens():
    from snakemake_human_gate.server.run import RedactLinks

    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "POST", "/l/eyJhIjoi.c2ln?x=1", "1.1", 200), None,
    )  # fmt: skip
    assert RedactLinks().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "POST /l/***?x=1 HTTP/1.1" 200'
