"""Notification targets, settings and messages: pure parsing and payload building."""

import subprocess
import sys
from email.utils import parsedate_to_datetime

import pytest

from snakemake_human_gate import gate
from snakemake_human_gate.errors import InvalidInput
from snakemake_human_gate.messages import (
    email_message,
    event_of,
    generic_payload,
    resolve_links,
    slack_payload,
)
from snakemake_human_gate.notify import Notifier, Retry, parse_retry_after
from snakemake_human_gate.record import Decision, GateRecord
from snakemake_human_gate.targets import (
    SmtpConfig,
    Target,
    parse_target,
    parse_targets,
    redact_url,
    targets_from_env,
)

ASKED = 1_700_000_000.0  # 2023-11-14T22:13:20Z
SLACK_HOOK = "https://hooks.slack.com/services/T000/B000/SECRETtoken"
LINKS = {
    "approve": "https://gates.example.org/l/approve-token",
    "reject": "https://gates.example.org/l/reject-token",
    "page": "https://gates.example.org/gates/review-0123456789ab",
}


def record(**spec_options) -> GateRecord:
    options = {
        "fields": {"lr": gate.field(float, min=0, max=1), "arch": gate.field(str, choices=["a"])},
        "approvers": ["alice", "bob"],
        "quorum": 2,
        "timeout": "2d",
        "on_timeout": "reject",
        **spec_options,
    }
    return GateRecord(
        id="review-0123456789ab",
        rule="review",
        wildcards={"run": "r1"},
        inputs=[
            {"path": "/work/runs/r1/metrics.json", "sha256": "a" * 64},
            {"path": "/work/runs/r1/roc.png", "sha256": "b" * 64},
        ],
        output="/work/gates/review.json",
        spec=options.pop("spec", None) or gate("Ship <model> & friends?", **options),
        requested_by="carol",
        created=ASKED,
    )


def decided(choice: str = "approve", timeout: bool = False) -> GateRecord:
    r = record()
    r.decision = Decision(
        choice=choice,
        fields={"lr": 0.5, "arch": "a"} if not timeout else {},
        by=["timeout"] if timeout else ["alice", "bob"],
        at="2023-11-15T08:00:00Z",
        comment="looks good" if not timeout else "",
        timeout=timeout,
        gate=r.id,
    )
    return r


# -- targets -------------------------------------------------------------------------


def test_the_four_target_forms_parse():
    targets = parse_targets(
        [
            "webhook:https://example.org/gate-events?key=k",
            f" Slack:{SLACK_HOOK} ",
            "mattermost:https://chat.example.org/hooks/abc123",
            "email:alice@example.org",
            "email:alice@example.org",  # duplicates are dropped
        ]
    )
    assert [(t.kind, t.address) for t in targets] == [
        ("webhook", "https://example.org/gate-events?key=k"),
        ("slack", SLACK_HOOK),
        ("mattermost", "https://chat.example.org/hooks/abc123"),
        ("email", "alice@example.org"),
    ]
    assert parse_targets("email:bob@example.org") == [Target("email", "bob@example.org")]


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (f"slak:{SLACK_HOOK}", "'slak:https://hooks.slack.com/***' does not start with webhook:"),
        (SLACK_HOOK, "'https://hooks.slack.com/***' does not start with"),
        ("webhook:ftp://example.org/x", "needs an http:// or https:// URL"),
        ("webhook:https:///no-host", "needs an http:// or https:// URL"),
        ("webhook:https://example.org:99999/x", "is not a valid URL"),
        ("slack:", "needs an http:// or https:// URL"),
        ("mattermost:https://chat.example.org/api/v4/posts", "not a Mattermost incoming webhook"),
        ("email:alice", "is not an email address"),
        ("email:alice@example.org, bob@example.org", "is not an email address"),
        ("alice@example.org", "does not start with"),
    ],
)
def test_bad_targets_are_named_redacted_with_the_accepted_forms(item, message):
    with pytest.raises(InvalidInput) as info:
        parse_target(item, origin="gate(notify=...)")
    text = str(info.value)
    assert text.startswith("gate(notify=...): ") and message in text
    assert "SECRET" not in text and "; use webhook:https://<host>/<path>" in text


def test_targets_from_the_environment():
    env = {"SNAKEMAKE_GATE_NOTIFY": f"slack:{SLACK_HOOK}, email:ops@example.org,"}
    assert [t.kind for t in targets_from_env(env)] == ["slack", "email"]
    assert targets_from_env({}) == []
    with pytest.raises(InvalidInput, match=r"^\$SNAKEMAKE_GATE_NOTIFY: 'sms:12345'"):
        targets_from_env({"SNAKEMAKE_GATE_NOTIFY": "sms:12345"})


def test_targets_print_only_scheme_and_host():
    target = parse_target(f"slack:{SLACK_HOOK}")
    for shown in (str(target), repr(target), target.redacted, f"{[target]}"):
        assert "SECRET" not in shown and "hooks.slack.com" in shown
    assert redact_url("https://user:pw@example.org:8443/hook?token=t") == (
        "https://example.org:8443/***"
    )
    assert redact_url("http://[::1]:8080/") == "http://[::1]:8080"
    assert str(Target("email", "alice@example.org")) == "email:alice@example.org"


def test_smtp_settings_from_the_environment():
    assert SmtpConfig.from_env({}) is None
    plain = SmtpConfig.from_env({"SNAKEMAKE_GATE_SMTP": "mail.example.org"})
    assert plain is not None and (plain.host, plain.port, plain.starttls) == (
        "mail.example.org",
        25,
        False,
    )
    assert "@" in plain.sender
    tls = SmtpConfig.from_env(
        {
            "SNAKEMAKE_GATE_SMTP": "mail.example.org",
            "SNAKEMAKE_GATE_SMTP_STARTTLS": "1",
            "SNAKEMAKE_GATE_SMTP_USER": "bot",
            "SNAKEMAKE_GATE_SMTP_PASSWORD": "hunter2",
            "SNAKEMAKE_GATE_SMTP_FROM": "Gates <gates@example.org>",
        }
    )
    assert tls == SmtpConfig(
        "mail.example.org", 587, "Gates <gates@example.org>", True, "bot", "hunter2"
    )
    assert "hunter2" not in repr(tls)
    v6 = SmtpConfig.from_env({"SNAKEMAKE_GATE_SMTP": "[::1]:2525"})
    assert v6 is not None and (v6.host, v6.port) == ("::1", 2525)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SNAKEMAKE_GATE_SMTP": "mail:smtp"}, r"\$SNAKEMAKE_GATE_SMTP: 'mail:smtp' is not host"),
        ({"SNAKEMAKE_GATE_SMTP": "mail:0"}, "is not host or host:port"),
        ({"SNAKEMAKE_GATE_SMTP_STARTTLS": "maybe"}, r"\$SNAKEMAKE_GATE_SMTP_STARTTLS: 'maybe'"),
        ({"SNAKEMAKE_GATE_SMTP_USER": "bot"}, "go together"),
        ({"SNAKEMAKE_GATE_SMTP_FROM": "gates"}, r"\$SNAKEMAKE_GATE_SMTP_FROM: 'gates'"),
    ],
)
def test_bad_smtp_settings_name_the_variable(env, message):
    with pytest.raises(InvalidInput, match=message):
        SmtpConfig.from_env({"SNAKEMAKE_GATE_SMTP": "mail.example.org", **env})


def test_email_targets_need_an_smtp_server():
    with pytest.raises(InvalidInput, match=r"email:ops@example.org: .*\$SNAKEMAKE_GATE_SMTP"):
        Notifier([Target("email", "ops@example.org")])
    notifier = Notifier()
    with pytest.raises(InvalidInput, match="SMTP"):
        notifier.check(parse_targets(["email:ops@example.org"]))
    with pytest.raises(ValueError, match="unknown gate event 'asked'"):
        notifier.notify("asked", record())
    notifier.notify("pending", record())  # no targets: nothing to do, no thread
    assert notifier.close(timeout=0) is True


# -- retries ---------------------------------------------------------------------------


def test_backoff_doubles_and_a_small_retry_after_wins():
    retry = Retry(attempts=4, backoff=1.0, max_retry_after=30)
    assert [retry.delay(n) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert retry.delay(1, retry_after=7) == 7
    assert retry.delay(2, retry_after=3600) == 2.0  # too long: our own backoff


def test_retry_after_header_forms():
    assert parse_retry_after("5") == 5.0
    when = "Wed, 15 Nov 2023 08:00:10 GMT"
    now = parsedate_to_datetime(when).timestamp() - 10
    assert parse_retry_after(when, now=now) == 10.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


# -- messages ----------------------------------------------------------------------------


def test_generic_payload_of_a_pending_gate():
    payload = generic_payload("pending", record(), LINKS)
    assert payload == {
        "schema": 1,
        "event": "pending",
        "gate": "review-0123456789ab",
        "rule": "review",
        "wildcards": {"run": "r1"},
        "question": "Ship <model> & friends?",
        "choices": ["approve", "reject"],
        "fields": [
            {"name": "lr", "type": "float", "choices": None, "min": 0, "max": 1, "required": True},
            {
                "name": "arch",
                "type": "str",
                "choices": ["a"],
                "min": None,
                "max": None,
                "required": True,
            },
        ],
        "approvers": ["alice", "bob"],
        "quorum": 2,
        "requested_by": "carol",
        "asked_at": "2023-11-14T22:13:20Z",
        "timeout_at": "2023-11-16T22:13:20Z",
        "on_timeout": "reject",
        "artifacts": [
            {"name": "metrics.json", "path": "/work/runs/r1/metrics.json", "sha256": "a" * 64},
            {"name": "roc.png", "path": "/work/runs/r1/roc.png", "sha256": "b" * 64},
        ],
        "decision": None,
        "links": LINKS,
        "late": False,
    }
    assert generic_payload("pending", record(), None)["links"] == {}


def test_generic_payload_of_a_decided_gate():
    payload = generic_payload("decided", decided(), {"page": LINKS["page"]})
    assert payload["decision"]["choice"] == "approve"
    assert payload["decision"]["by"] == ["alice", "bob"]
    assert payload["links"] == {"page": LINKS["page"]}
    with pytest.raises(ValueError, match="unknown gate event"):
        generic_payload("approved", decided(), None)


def test_links_asked_for_depend_on_the_event_and_choices():
    asked = []

    def maker(rec, action, act_as):
        asked.append((action, act_as))
        return None if action == "reject" else f"https://x/{action}"

    assert resolve_links("pending", record(), maker, "alice") == {
        "approve": "https://x/approve",
        "page": "https://x/page",
    }
    assert asked == [("approve", "alice"), ("reject", "alice"), ("page", "alice")]
    # one-click links only for a target that says whom they act as
    assert resolve_links("pending", record(), maker) == {"page": "https://x/page"}
    assert resolve_links("decided", decided(), maker, "alice") == {"page": "https://x/page"}
    only_retune = record(choices=["retune", "stop"], on_timeout="stop", fail_on=["stop"])
    assert resolve_links("pending", only_retune, maker, "alice") == {"page": "https://x/page"}


def test_targets_take_addresses_from_the_environment_and_a_user_for_links():
    env = {"TEAM_HOOK": SLACK_HOOK}
    (target,) = parse_targets(["slack:${TEAM_HOOK} as alice"], environ=env)
    assert target == Target("slack", SLACK_HOOK, "alice")
    assert str(target) == "slack:https://hooks.slack.com/*** as alice"
    assert parse_target("email:bob@example.org").act_as is None
    with pytest.raises(InvalidInput, match="environment variable TEAM_HOOK is not set"):
        parse_target("slack:$TEAM_HOOK", environ={})
    with pytest.raises(InvalidInput, match=r"names no environment variable \(write \$NAME"):
        parse_target("slack:$1abc", environ={})
    assert resolve_links("pending", record(), None) == {}
    assert [event_of(r) for r in (record(), decided(), decided("reject", True))] == [
        "pending",
        "decided",
        "timed_out",
    ]


def test_slack_payload_with_link_buttons():
    payload = slack_payload("pending", record(), LINKS, now=ASKED + 3 * 3600 + 120)
    blocks = payload["blocks"]
    assert [b["type"] for b in blocks] == ["header", "section", "context", "section", "actions"]
    assert blocks[0]["text"] == {"type": "plain_text", "text": "Waiting for a decision: review"}
    assert blocks[1]["text"]["text"].startswith("Ship &lt;model&gt; &amp; friends?\n")
    context = blocks[2]["elements"][0]["text"]
    assert "waiting 3 h 2 min" in context and "decides: alice, bob" in context
    assert "2 must agree" in context and "after 2023-11-16T22:13:20Z: reject" in context
    assert blocks[3]["text"]["text"] == "*Artifacts*\n• metrics.json\n• roc.png"
    buttons = blocks[4]["elements"]
    assert [(b["text"]["text"], b["url"], b.get("style")) for b in buttons] == [
        ("Approve", LINKS["approve"], "primary"),
        ("Reject", LINKS["reject"], "danger"),
        ("Open", LINKS["page"], None),
    ]
    # text carries everything for Mattermost (which ignores blocks) and Slack notifications
    text = payload["text"]
    assert "Ship &lt;model&gt; &amp; friends?" in text and "metrics.json, roc.png" in text
    assert f"<{LINKS['approve']}|Approve> · <{LINKS['reject']}|Reject>" in text


def test_slack_payload_without_links_has_no_buttons():
    payload = slack_payload("pending", record(), {}, now=ASKED)
    assert "actions" not in [b["type"] for b in payload["blocks"]]
    assert "|Approve>" not in payload["text"]
    long = record()
    long.rule = "r" * 200
    assert len(slack_payload("pending", long, None)["blocks"][0]["text"]["text"]) == 150


def test_slack_payload_of_decisions():
    payload = slack_payload("decided", decided(), {"page": LINKS["page"]})
    assert payload["blocks"][0]["text"]["text"] == "Decided: review"
    assert "answered 'approve' by alice, bob at 2023-11-15T08:00:00Z" in payload["text"]
    assert "lr=0.5" in payload["text"] and "looks good" in payload["text"]
    assert [b["text"]["text"] for b in payload["blocks"][-1]["elements"]] == ["Open"]
    expired = slack_payload("timed_out", decided("reject", timeout=True), None)
    assert expired["blocks"][0]["text"]["text"] == "Timed out: review"
    assert "timed out, answered 'reject' by timeout" in expired["text"]


def test_email_message():
    rec = record(spec=gate("Ship it?\nReally?", approvers=["alice"]))
    msg = email_message(
        "pending", rec, LINKS, to="alice@example.org", sender="gates@example.org", now=ASKED + 90
    )
    assert msg["Subject"] == "[gate] Waiting for a decision: Ship it? Really? (review)"
    assert (msg["To"], msg["From"], msg["Auto-Submitted"]) == (
        "alice@example.org",
        "gates@example.org",
        "auto-generated",
    )
    assert msg["Message-ID"].endswith("@example.org>")
    body = msg.get_content()
    assert body.startswith("Ship it?\nReally?\n")
    assert "waiting 1 min\ndecides: alice" in body
    assert "  /work/runs/r1/metrics.json" in body
    assert f"Approve: {LINKS['approve']}\nReject: {LINKS['reject']}\nOpen: {LINKS['page']}" in body
    done = email_message("decided", decided(), None, to="a@example.org", sender="g@example.org")
    assert done["Subject"].startswith("[gate] Decided: ")
    assert "Approve:" not in done.get_content()


def test_importing_notify_starts_nothing_and_loads_no_network_library():
    probe = (
        "import sys, threading, snakemake_human_gate.notify; "
        "print(threading.active_count(), 'requests' in sys.modules, 'smtplib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "False", "False"]
