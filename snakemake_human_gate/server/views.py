"""What the REST API shows of a gate: a GateRecord as a JSON-ready dict (pure, no I/O
but a ``stat`` of each artifact for its size)."""

import os
import time
from pathlib import Path
from typing import Any

from ..record import GateRecord, iso
from .urls import artifact_path, base

KINDS = {
    "image": {".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg"},
    "json": {".json"},
    "csv": {".csv", ".tsv"},
    "text": {".txt", ".log", ".md", ".yaml", ".yml", ".out", ".err"},
}
MEDIA_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8",
    ".tsv": "text/tab-separated-values; charset=utf-8",
}
TEXT = "text/plain; charset=utf-8"
SCRIPTABLE = {".svg"}  # shown as images, but documents that can run script
BINARY = "application/octet-stream"


def artifact_kind(path: str) -> str:
    """image, json, csv, text or other: how a page may show the file."""
    suffix = Path(path).suffix.lower()
    return next((kind for kind, suffixes in KINDS.items() if suffix in suffixes), "other")


def media_type(path: str) -> str:
    """The Content-Type an artifact is served with (other kinds: a download)."""
    suffix = Path(path).suffix.lower()
    kind = artifact_kind(path)
    if kind == "other":
        return BINARY
    return MEDIA_TYPES.get(suffix, TEXT)


def inline(path: str) -> bool:
    """Whether a browser may show the file when its URL is opened: not a kind it would
    run script in (HTML is "other"; SVG is an image that can hold script), which is only
    ever a download (the dashboard shows SVG as an <img> from a data: URL)."""
    return artifact_kind(path) != "other" and Path(path).suffix.lower() not in SCRIPTABLE


def _size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def artifacts(record: GateRecord, public_url: str | None = None) -> list[dict[str, Any]]:
    return [
        {
            "index": index,
            "name": Path(item["path"]).name,
            "path": item["path"],
            "kind": artifact_kind(item["path"]),
            "size": _size(item["path"]),
            "sha256": item["sha256"],
            "url": base(public_url) + artifact_path(record.id, index),
        }
        for index, item in enumerate(record.inputs)
    ]


def fields(record: GateRecord) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "type": spec.type,
            "choices": list(spec.choices) if spec.choices is not None else None,
            "min": spec.min,
            "max": spec.max,
            "default": spec.default,
            "required": spec.required,
        }
        for name, spec in record.spec.fields.items()
    ]


def may_decide(record: GateRecord, user: str) -> bool:
    """Whether ``user`` may answer the gate now (the store has the final word)."""
    spec = record.spec
    return (
        record.decision is None
        and (spec.approvers is None or user in spec.approvers)
        and (spec.allow_self_approval or user != record.requested_by)
    )


def gate_view(
    record: GateRecord,
    user: str,
    public_url: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The GateView of the REST API (see ``schemas.GateView``), as ``user`` sees it."""
    summary = record.summary(time.time() if now is None else now)
    spec = record.spec
    return {
        "id": record.id,
        "rule": record.rule,
        "wildcards": record.wildcards,
        "question": spec.question,
        "choices": list(spec.choices),
        "fields": fields(record),
        "approvers": list(spec.approvers) if spec.approvers is not None else None,
        "quorum": spec.quorum,
        "allow_self_approval": spec.allow_self_approval,
        "fail_on": list(spec.fail_on),
        "requested_by": record.requested_by,
        "status": record.status,
        "asked_at": iso(record.created),
        "waiting_seconds": summary["waiting_seconds"],
        "timeout_at": summary["deadline"],
        "on_timeout": spec.on_timeout,
        "artifacts": artifacts(record, public_url),
        "votes": [
            {
                "by": v.by,
                "choice": v.choice,
                "fields": v.fields,
                "at": iso(v.at),
                "comment": v.comment,
            }
            for v in record.votes
        ],
        "decision": record.decision.to_json() if record.decision else None,
        "may_decide": may_decide(record, user),
    }
