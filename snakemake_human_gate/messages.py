"""What a gate notification says: a generic JSON payload, a Slack/Mattermost message, an email.

Pure functions of a GateRecord, the event and the links to show; no I/O. The
notifier (``notify.py``) decides where they go.

Slack and Mattermost get one payload: ``text`` plus Slack ``blocks``. Slack shows
the blocks (with link buttons) and uses ``text`` for notifications; Mattermost
ignores ``blocks`` and shows ``text``, which therefore carries the whole message.
Links in ``text`` use Slack's ``<url|label>`` form, which Mattermost's incoming
webhooks turn into Markdown links. Legacy ``attachments`` would render in both,
but in Slack they would repeat the blocks, and their link syntax is no better.
"""

import os
import time
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any

from .record import GateRecord, iso

EVENTS = ("pending", "decided", "timed_out", "reminder", "escalated")
WAITING = ("pending", "reminder", "escalated")  # news of a gate that still waits
PAYLOAD_SCHEMA = 1
MAX_LISTED = 10  # artifacts shown by name in chat and email; the rest are counted

# (record, action, user the link acts as or None) -> URL; action: approve, reject, page
LinkMaker = Callable[[GateRecord, str, str | None], str | None]

_TITLES = {
    "pending": "Waiting for a decision",
    "decided": "Decided",
    "timed_out": "Timed out",
    "reminder": "Reminder: still waiting for a decision",
    "escalated": "Escalated: still waiting for a decision",
}
LATE = "sent late: no process was watching the gate when this was due"
_BUTTONS = (("approve", "Approve", "primary"), ("reject", "Reject", "danger"), ("page", "Open", ""))


def event_of(record: GateRecord) -> str:
    """The event a record's status announces: pending, decided or timed_out."""
    return {"pending": "pending", "decided": "decided", "expired": "timed_out"}[record.status]


def link_actions(event: str, record: GateRecord, act_as: str | None = None) -> list[str]:
    """The links worth asking for: one-click answers only while pending and for a target
    that names whom they act as; the page always."""
    if event not in WAITING or act_as is None:
        return ["page"]
    return [a for a in ("approve", "reject") if a in record.spec.choices] + ["page"]


def resolve_links(
    event: str, record: GateRecord, maker: LinkMaker | None, act_as: str | None = None
) -> dict[str, str]:
    """The links ``maker`` offers for this event (none without a maker)."""
    if maker is None:
        return {}
    actions = link_actions(event, record, act_as)
    found = {action: maker(record, action, act_as) for action in actions}
    return {action: url for action, url in found.items() if url}


def check_event(event: str) -> None:
    if event not in EVENTS:
        raise ValueError(f"unknown gate event {event!r}: use one of {', '.join(EVENTS)}")


def _timeout_at(record: GateRecord) -> str | None:
    timeout = record.spec.timeout
    return iso(record.created + timeout) if timeout is not None else None


def generic_payload(
    event: str, record: GateRecord, links: Mapping[str, str] | None = None, late: bool = False
) -> dict[str, Any]:
    """The JSON a ``webhook:`` target receives (``late``: sent well after it was due)."""
    check_event(event)
    spec = record.spec
    return {
        "schema": PAYLOAD_SCHEMA,
        "event": event,
        "gate": record.id,
        "rule": record.rule,
        "wildcards": dict(record.wildcards),
        "question": spec.question,
        "choices": list(spec.choices),
        "fields": [
            {
                "name": name,
                "type": f.type,
                "choices": list(f.choices) if f.choices is not None else None,
                "min": f.min,
                "max": f.max,
                "required": f.required,
            }
            for name, f in spec.fields.items()
        ],
        "approvers": list(spec.approvers) if spec.approvers is not None else None,
        "quorum": spec.quorum,
        "requested_by": record.requested_by,
        "asked_at": iso(record.created),
        "timeout_at": _timeout_at(record),
        "on_timeout": spec.on_timeout,
        "artifacts": [
            {"name": os.path.basename(i["path"]), "path": i["path"], "sha256": i["sha256"]}
            for i in record.inputs
        ],
        "decision": record.decision.to_json() if record.decision is not None else None,
        "links": {k: links[k] for k in ("approve", "reject", "page") if links and links.get(k)},
        "late": late,
    }


def duration(seconds: float) -> str:
    """45 s, 12 min, 3 h 5 min, 2 d 4 h."""
    s = int(max(0.0, seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def _artifact_names(record: GateRecord) -> list[str]:
    names = [os.path.basename(i["path"]) for i in record.inputs[:MAX_LISTED]]
    if len(record.inputs) > MAX_LISTED:
        names.append(f"and {len(record.inputs) - MAX_LISTED} more")
    return names


def _status_line(event: str, record: GateRecord) -> str:
    """What happened, in one line (pending: who is asked)."""
    decision = record.decision
    if event in WAITING or decision is None:
        return f"Choices: {', '.join(record.spec.choices)}"
    verb = "timed out, answered" if decision.timeout else "answered"
    text = f"{verb} '{decision.choice}' by {', '.join(decision.by)} at {decision.at}"
    if decision.fields:
        text += " with " + ", ".join(f"{k}={v!r}" for k, v in decision.fields.items())
    return f"{text}; {decision.comment}" if decision.comment else text


def _context_line(record: GateRecord, now: float) -> str:
    spec = record.spec
    who = ", ".join(spec.approvers) if spec.approvers is not None else "anyone"
    if spec.escalate and spec.escalate.deciders:
        verb = "escalated to" if now >= record.created + spec.escalate.after else "later also"
        who += f" ({verb} {', '.join(spec.escalate.deciders)})"
    parts = [f"waiting {duration(now - record.created)}", f"decides: {who}"]
    if spec.quorum > 1:
        parts.append(f"{spec.quorum} must agree")
    if spec.timeout is not None:
        parts.append(f"after {_timeout_at(record)}: {spec.on_timeout}")
    parts.append(f"gate {record.id}")
    return " · ".join(parts)


def _mrkdwn(text: str) -> str:
    """Slack's three escapes (Mattermost's Markdown reads them as entities)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_link(url: str, label: str) -> str:
    return f"<{url.replace('|', '%7C').replace('>', '%3E')}|{label}>"


def slack_payload(
    event: str,
    record: GateRecord,
    links: Mapping[str, str] | None = None,
    now: float | None = None,
    late: bool = False,
) -> dict[str, Any]:
    """``text`` + ``blocks`` for Slack and Mattermost incoming webhooks (see the module doc)."""
    check_event(event)
    now = time.time() if now is None else now
    links = links or {}
    title = f"{_TITLES[event]}: {record.rule}"
    question = _mrkdwn(record.spec.question)
    status = _mrkdwn(_status_line(event, record))
    context = _mrkdwn(_context_line(record, now) if event in WAITING else f"gate {record.id}")
    if late:
        context += f" · {LATE}"
    artifacts = [_mrkdwn(name) for name in _artifact_names(record)]
    present = [(a, label, style) for a, label, style in _BUTTONS if links.get(a)]

    lines = [title, question, status, context]
    if artifacts:
        lines.append("Artifacts: " + ", ".join(artifacts))
    if present:
        lines.append(" · ".join(_slack_link(links[a], label) for a, label, _ in present))

    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{question}\n{status}"[:3000]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
    ]
    if artifacts:
        listing = "*Artifacts*\n" + "\n".join(f"• {name}" for name in artifacts)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": listing[:3000]}})
    if present:
        buttons = []
        for action, label, style in present:
            button = {
                "type": "button",
                "text": {"type": "plain_text", "text": label},
                "url": links[action],
                "action_id": f"gate-{action}",
            }
            if style:
                button["style"] = style
            buttons.append(button)
        blocks.append({"type": "actions", "elements": buttons})
    return {"text": "\n".join(lines), "blocks": blocks}


def email_message(
    event: str,
    record: GateRecord,
    links: Mapping[str, str] | None = None,
    *,
    to: str,
    sender: str,
    now: float | None = None,
    late: bool = False,
) -> EmailMessage:
    """A plain-text email for one recipient."""
    check_event(event)
    now = time.time() if now is None else now
    links = links or {}
    spec = record.spec
    subject = " ".join(f"[gate] {_TITLES[event]}: {spec.question} ({record.rule})".split())
    body = [spec.question, "", _status_line(event, record)]
    if late:
        body += ["", f"({LATE}.)"]
    if event in WAITING:
        body += ["", _context_line(record, now).replace(" · ", "\n")]
        if spec.fields:
            body += ["", "Fields:"] + [f"  {n} ({f.type})" for n, f in spec.fields.items()]
    else:
        body += ["", f"gate {record.id}"]
    if record.inputs:
        body += ["", "Artifacts:"] + [f"  {i['path']}" for i in record.inputs]
    labels = [(a, label) for a, label, _ in _BUTTONS if links.get(a)]
    if labels:
        body += [""] + [f"{label}: {links[a]}" for a, label in labels]
    body += ["", f"Asked by {record.requested_by} at {iso(record.created)}."]

    msg = EmailMessage()
    msg["Subject"] = subject[:200]
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = formatdate(now, localtime=False)
    msg["Message-ID"] = make_msgid(domain=parseaddr(sender)[1].rpartition("@")[2] or "localhost")
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content("\n".join(body) + "\n")
    return msg
