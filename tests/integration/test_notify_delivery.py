"""Notifications delivered to real local receivers: an HTTP server playing a webhook,
Slack and Mattermost, and an SMTP server (aiosmtpd)."""

import logging
import socket
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from snakemake_human_gate import gate
from snakemake_human_gate.notify import Notifier, Retry, SmtpConfig, parse_targets
from snakemake_human_gate.record import GateRecord

FAST = Retry(attempts=4, backoff=0.05)
LINKS = {
    "approve": "https://gates.example.org/l/approve-token",
    "reject": "https://gates.example.org/l/reject-token",
    "page": "https://gates.example.org/gates/review-0123456789ab",
}


def links(record: GateRecord, action: str, act_as: str | None) -> str | None:
    return LINKS.get(action)


def record() -> GateRecord:
    return GateRecord(
        id="review-0123456789ab",
        rule="review",
        wildcards={"run": "r1"},
        inputs=[{"path": "/work/runs/r1/metrics.json", "sha256": "a" * 64}],
        output="/work/gates/review.json",
        spec=gate("Ship model r1?", approvers=["alice"]),
        requested_by="carol",
        created=time.time() - 60,
    )


class Outcomes:
    """What the notifier reported, through the callbacks the executor would audit with."""

    def __init__(self) -> None:
        self.done: list[tuple[str, ...]] = []
        self.cond = threading.Condition()

    def success(self, target: str, event: str, gate_id: str) -> None:
        with self.cond:
            self.done.append(("ok", target, event, gate_id))
            self.cond.notify_all()

    def failure(self, target: str, event: str, gate_id: str, error: str) -> None:
        with self.cond:
            self.done.append(("failed", target, event, gate_id, error))
            self.cond.notify_all()

    def wait(self, count: int, timeout: float = 10) -> list[tuple[str, ...]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.done) >= count, timeout), self.done
            return list(self.done)


@pytest.fixture
def outcomes() -> Outcomes:
    return Outcomes()


def notifier(outcomes: Outcomes, *targets: str, **options: Any) -> Notifier:
    return Notifier(
        parse_targets(targets),
        links=links,
        on_success=outcomes.success,
        on_failure=outcomes.failure,
        **{"retry": FAST, "timeout": 5.0, **options},
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_generic_slack_and_mattermost_payloads_arrive(receiver, outcomes):
    n = notifier(
        outcomes,
        "webhook:" + receiver.url("/events/SECRET-1") + " as alice",
        "slack:" + receiver.url("/services/T0/B0/SECRET-2") + " as alice",
        "mattermost:" + receiver.url("/hooks/SECRET-3") + " as alice",
    )
    n.notify("pending", record())
    done = outcomes.wait(3)
    assert n.close(5)
    assert {d[0] for d in done} == {"ok"} and {d[2:] for d in done} == {
        ("pending", "review-0123456789ab")
    }
    assert sorted(d[1] for d in done) == [
        f"mattermost:http://127.0.0.1:{receiver.server_address[1]}/*** as alice",
        f"slack:http://127.0.0.1:{receiver.server_address[1]}/*** as alice",
        f"webhook:http://127.0.0.1:{receiver.server_address[1]}/*** as alice",
    ]
    got = {r["path"]: r for r in receiver.requests}
    generic = got["/events/SECRET-1"]
    assert generic["headers"]["Content-Type"] == "application/json"
    assert generic["headers"]["User-Agent"] == "snakemake-human-gate"
    body = generic["json"]
    assert (body["event"], body["gate"], body["rule"], body["question"]) == (
        "pending",
        "review-0123456789ab",
        "review",
        "Ship model r1?",
    )
    assert body["approvers"] == ["alice"] and body["links"] == LINKS
    assert body["artifacts"][0]["name"] == "metrics.json"
    for path in ("/services/T0/B0/SECRET-2", "/hooks/SECRET-3"):
        chat = got[path]["json"]
        assert "Ship model r1?" in chat["text"] and f"<{LINKS['page']}|Open>" in chat["text"]
        buttons = chat["blocks"][-1]["elements"]
        assert [b["text"]["text"] for b in buttons] == ["Approve", "Reject", "Open"]
        assert "waiting 1 min" in chat["blocks"][2]["elements"][0]["text"]


def test_server_errors_are_retried_until_delivered(receiver, outcomes):
    receiver.script["/hook"] = [(500, {}), (503, {})]
    n = notifier(outcomes, "webhook:" + receiver.url("/hook"))
    n.notify("decided", record())
    assert outcomes.wait(1)[0][:3] == ("ok", n.targets[0].redacted, "decided")
    assert receiver.paths() == ["/hook"] * 3
    assert n.close(5)


def test_a_small_retry_after_is_honoured(receiver, outcomes):
    receiver.script["/hook"] = [(429, {"Retry-After": "0"})]
    n = notifier(outcomes, "webhook:" + receiver.url("/hook"), retry=Retry(backoff=60))
    start = time.monotonic()
    n.notify("pending", record())
    assert outcomes.wait(1)[0][0] == "ok"
    assert time.monotonic() - start < 5  # Retry-After 0, not the 60 s backoff
    assert receiver.paths() == ["/hook"] * 2
    n.close(5)


def test_client_errors_are_not_retried_and_reported(receiver, outcomes, caplog):
    receiver.script["/services/SECRET"] = [(400, {})]
    n = notifier(outcomes, "slack:" + receiver.url("/services/SECRET"))
    with caplog.at_level(logging.WARNING, logger="snakemake_human_gate.notify"):
        n.notify("pending", record())
        [(status, target, event, gid, error)] = outcomes.wait(1)
        assert n.close(5)
    assert (status, event, gid) == ("failed", "pending", "review-0123456789ab")
    assert target == f"slack:{receiver.url('')}/***"
    assert error == "HTTP 400: ok (attempt 1 of 4)"
    time.sleep(0.2)
    assert receiver.paths() == ["/services/SECRET"]
    assert "HTTP 400" in caplog.text and "SECRET" not in caplog.text


def test_redirects_are_not_followed(receiver, outcomes):
    elsewhere = receiver.url("/elsewhere/SECRET")
    receiver.script["/hook"] = [(302, {"Location": elsewhere})]
    n = notifier(outcomes, "webhook:" + receiver.url("/hook"))
    n.notify("pending", record())
    [(status, *_, error)] = outcomes.wait(1)
    assert status == "failed" and "HTTP 302: redirected to" in error and "SECRET" not in error
    assert n.close(5) and receiver.paths() == ["/hook"]


def test_unreachable_target_does_not_hold_up_the_caller_or_other_targets(
    receiver, outcomes, caplog
):
    dead = f"webhook:http://127.0.0.1:{closed_port()}/hooks/SECRET"
    n = notifier(outcomes, dead, "webhook:" + receiver.url("/hook"), retry=Retry(3, 0.05))
    with caplog.at_level(logging.INFO, logger="snakemake_human_gate.notify"):
        start = time.perf_counter()
        n.notify("pending", record())
        assert time.perf_counter() - start < 0.05
        done = outcomes.wait(2)
        assert n.close(5)
    assert done[0][:2] == ("ok", n.targets[1].redacted)  # the good target did not wait
    status, target, _, _, error = done[1]
    assert status == "failed" and target.endswith("/***")
    assert "(attempt 3 of 3)" in error and "SECRET" not in error
    assert caplog.text.count("retrying in") == 2 and "SECRET" not in caplog.text


def test_close_delivers_what_is_queued_then_gives_up(receiver, outcomes):
    receiver.script["/down"] = [(503, {})] * 10
    n = notifier(
        outcomes,
        "webhook:" + receiver.url("/up"),
        "webhook:" + receiver.url("/down"),
        retry=Retry(attempts=4, backoff=30),
    )
    n.notify("pending", record())
    start = time.monotonic()
    assert n.close(timeout=1.0)
    assert time.monotonic() - start < 3
    ok, gave_up = outcomes.wait(2, timeout=0)
    assert ok[0] == "ok" and ok[1] == n.targets[0].redacted
    assert gave_up[0] == "failed" and gave_up[1] == n.targets[1].redacted
    assert gave_up[4].startswith(
        "gave up when the notifier closed (1 attempt(s); last error: HTTP 503"
    )
    n.notify("decided", record())  # after close: reported, not sent
    assert [d[4] for d in outcomes.wait(4, timeout=0)[2:]] == [
        "not sent: the notifier is closed"
    ] * 2


# -- email -------------------------------------------------------------------------------


class Mailbox:
    """An aiosmtpd handler: keeps the messages, refuses recipients at nowhere.example.org."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.rcpt_attempts = 0
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpt_attempts += 1
        if address.endswith("@nowhere.example.org"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, envelope.content))
        return "250 Message accepted"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        assert isinstance(auth_data, LoginPassword)
        self.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"pw")


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = closed_port()  # aiosmtpd's Controller needs a fixed port
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=mailbox.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    yield mailbox, port
    controller.stop()


def test_email_is_delivered_through_smtp_with_login(smtp_server, outcomes):
    mailbox, port = smtp_server
    smtp = SmtpConfig("127.0.0.1", port, "gates@example.org", user="bot", password="pw")
    n = notifier(outcomes, "email:alice@example.org as alice", smtp=smtp)
    n.notify("pending", record())
    assert outcomes.wait(1)[0][:2] == ("ok", "email:alice@example.org as alice")
    assert n.close(5)
    assert mailbox.logins == [(b"bot", b"pw")]
    [(sender, recipients, content)] = mailbox.messages
    assert (sender, recipients) == ("gates@example.org", ["alice@example.org"])
    msg = message_from_bytes(content, policy=policy.default)
    assert msg["Subject"] == "[gate] Waiting for a decision: Ship model r1? (review)"
    body = msg.get_content()
    assert "Ship model r1?" in body and f"Approve: {LINKS['approve']}" in body


def test_refused_recipient_is_not_retried(smtp_server, outcomes):
    mailbox, port = smtp_server
    smtp = SmtpConfig("127.0.0.1", port, "gates@example.org")
    n = notifier(outcomes, "email:bob@nowhere.example.org", smtp=smtp)
    n.notify("timed_out", record())
    [(status, target, event, _, error)] = outcomes.wait(1)
    assert n.close(5)
    assert (status, target, event) == ("failed", "email:bob@nowhere.example.org", "timed_out")
    assert "550" in error and "(attempt 1 of 4)" in error
    assert mailbox.rcpt_attempts == 1 and mailbox.messages == []


def test_email_to_a_gate_target_without_smtp_server_is_reported(outcomes):
    n = notifier(outcomes)
    n.notify("pending", record(), parse_targets(["email:alice@example.org"]))
    [(status, target, *_, error)] = outcomes.wait(1)
    assert n.close(5)
    assert (status, target) == ("failed", "email:alice@example.org")
    assert "no SMTP server: set $SNAKEMAKE_GATE_SMTP" in error
