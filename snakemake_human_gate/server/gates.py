"""The REST operations on gates, as plain functions of an authenticated caller.

Each returns JSON-ready data or raises :class:`~.security.Refused` (audited); the
FastAPI routes in ``routes`` only read the request and call these in a worker thread.
"""

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BadRecord, GateError, InvalidInput, UnknownGate
from ..groups import Groups
from ..news import News
from ..record import GateRecord, check_gate_id, timestamp
from ..store import GateStore
from ..storefs import UnsafeFile, open_regular
from .payload import MalformedRequest, parse_body, parse_named_body
from .security import ArtifactChanged, Caller, Guard, Refused
from .views import gate_view, inline, media_type

logger = logging.getLogger(__name__)

RECENT = 7 * 86400  # seconds: what status=all shows of decided gates
MAX_ARTIFACT = 256 * 1024 * 1024  # bytes served in one answer


@dataclass(frozen=True)
class Artifact:
    data: bytes
    media_type: str
    name: str
    sha256: str
    inline: bool


class Gates:
    def __init__(
        self, store: GateStore, guard: Guard, news: News, public_url: str | None = None
    ) -> None:
        self.store = store
        self.guard = guard
        self.news = news  # announces the decisions made here
        self.public_url = public_url

    def view(self, record: GateRecord, caller: Caller) -> dict[str, Any]:
        return gate_view(record, caller.user, self.public_url, members=self.groups().members)

    def groups(self) -> Groups:
        """Approver groups, read anew for each answer (a change applies at once)."""
        return Groups(self.store.tree)

    def check_id(self, caller: Caller, gid: str) -> str:
        """``gid`` if it can be a gate id; else Refused 404 (audited), nothing read."""
        try:
            return check_gate_id(gid)
        except InvalidInput:
            error = UnknownGate(f"no gate {gid[:200]!r}: not a gate id")
            raise self.guard.refuse(error, caller, None, requested=gid[:200]) from None

    def record(self, caller: Caller, gid: str) -> GateRecord:
        """The gate as it stands (timeouts applied); Refused 404 for a bad or unknown id."""
        self.check_id(caller, gid)
        try:
            return self.store.current(gid)
        except UnknownGate as e:
            raise self.guard.refuse(e, caller, gid) from None
        except BadRecord as e:
            raise bad_record(gid, e) from None

    def list(self, caller: Caller, status: str) -> dict[str, Any]:
        records, _ = self.store.scan_current()
        now = time.time()
        pending = sorted((r for r in records if r.decision is None), key=lambda r: r.created)
        decided = sorted(
            (r for r in records if r.decision is not None),
            key=lambda r: timestamp(r.decision.at, 0.0) if r.decision else 0.0,
            reverse=True,
        )
        if status == "pending":
            chosen = pending
        elif status == "decided":
            chosen = decided
        else:
            recent = [
                r for r in decided if r.decision and timestamp(r.decision.at, 0.0) >= now - RECENT
            ]
            chosen = pending + recent
        members = self.groups().members
        return {"gates": [gate_view(r, caller.user, self.public_url, now, members) for r in chosen]}

    def detail(self, caller: Caller, gid: str) -> dict[str, Any]:
        record = self.record(caller, gid)
        return {**self.view(record, caller), "audit": list(self.store.audit.entries(record.id))}

    def artifact(self, caller: Caller, gid: str, index: int) -> Artifact:
        """The bytes of the gate's recorded input number ``index``, as they were asked about."""
        record = self.record(caller, gid)
        if not 0 <= index < len(record.inputs):
            error = UnknownGate(f"gate {gid} has no artifact {index} (it has {len(record.inputs)})")
            raise self.guard.refuse(error, caller, gid, reason="unknown artifact")
        item = record.inputs[index]
        path = Path(item["path"])
        try:
            with os.fdopen(open_regular(path), "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size > MAX_ARTIFACT:
                    raise self.guard.refuse(
                        InvalidInput(
                            f"artifact {index} is over {MAX_ARTIFACT} bytes: read {path} "
                            "on the server"
                        ),
                        caller,
                        gid,
                        reason="artifact too large",
                    )
                data = f.read(size)  # what it had when opened: the digest says if it changed
        except OSError as e:
            error = UnknownGate(f"artifact {index} of gate {gid} cannot be read: {e.strerror}")
            raise self.guard.refuse(error, caller, gid, reason="artifact gone") from None
        except UnsafeFile as e:  # a FIFO or a device: never what the gate was asked about
            changed = ArtifactChanged(
                f"artifact {index} of gate {gid} ({path.name}) is {e.found}, not the file "
                "the gate was asked about"
            )
            raise self.guard.refuse(changed, caller, gid) from None
        digest = hashlib.sha256(data).hexdigest()
        if digest != item["sha256"]:
            changed = ArtifactChanged(
                f"artifact {index} of gate {gid} ({path.name}) changed since the gate was "
                "asked: the gate is about its old content; rerun the workflow to ask anew"
            )
            raise self.guard.refuse(changed, caller, gid)
        return Artifact(data, media_type(item["path"]), path.name, digest, inline(item["path"]))

    def decide(self, caller: Caller, gid: str, raw: bytes) -> dict[str, Any]:
        self.check_id(caller, gid)
        try:
            request = parse_body(raw)
        except (MalformedRequest, InvalidInput) as e:
            raise self.guard.refuse(e, caller, gid) from None
        return self._decide(caller, gid, request.choice, request.fields, request.comment)

    def decide_named(self, caller: Caller, raw: bytes) -> dict[str, Any]:
        """``POST /hooks/decision``: the gate is named in the body."""
        try:
            gid, request = parse_named_body(raw)
        except (MalformedRequest, InvalidInput) as e:
            raise self.guard.refuse(e, caller) from None
        self.check_id(caller, gid)
        return self._decide(caller, gid, request.choice, request.fields, request.comment)

    def _decide(
        self, caller: Caller, gid: str, choice: str, values: dict[str, Any], comment: str
    ) -> dict[str, Any]:
        """The gate is read and the answer checked once: by the store, under its lock."""
        try:
            record = self.store.decide(
                gid, choice, values, comment=comment, actor=caller.user, via=caller.via, strict=True
            )
        except BadRecord as e:
            raise bad_record(gid, e) from None
        except UnsafeFile:  # a FIFO or a link in the store: the server's problem (500)
            raise
        except GateError as e:  # the store audited it
            raise self.guard.refuse(e, caller, gid, audited=True) from None
        if record.decision is not None:
            record = self.news.send_safely(record)  # this server announces what it decides
        return self.view(record, caller)


def bad_record(gid: str, error: BadRecord) -> Refused:
    """A gate file that is not a gate record: the server's problem (500), logged here."""
    logger.error("%s", error)  # the file's path: for the server's log, not for clients
    detail = f"gate {gid} cannot be read: see the server's log and 'snakemake-gate list'"
    return Refused(500, "bad-record", detail)
