"""Tell people about the gates of one store: who, where, with which links.

Targets come from the gate (``gate(..., notify=[...])``) and from
``$SNAKEMAKE_GATE_NOTIFY``; with ``$SNAKEMAKE_GATE_URL`` (the public address of
``snakemake-gate serve``) messages link to the dashboard, and targets written
``... as USER`` also get signed one-click approve/reject links acting as USER.
Every delivery and every failure is written to the store's audit log; none of
them can fail or stall the caller.
"""

import os
import time
from collections.abc import Mapping
from typing import Any, Literal, cast

from .links import LinkSigner
from .messages import event_of
from .notify import Notifier
from .record import GateRecord
from .server.urls import link_url, page_url
from .spec import GateSpec
from .store import GateStore
from .targets import Target, parse_targets

ENV_URL = "SNAKEMAKE_GATE_URL"
LINK_TTL = 7 * 24 * 3600.0  # a one-click link never outlives this (nor its gate's timeout)


class Announcer:
    def __init__(
        self,
        store: GateStore,
        environ: Mapping[str, str] | None = None,
        targets: str | None = None,
        url: str | None = None,
        **kwargs: Any,
    ) -> None:
        """``targets`` (comma-separated) add to $SNAKEMAKE_GATE_NOTIFY; ``url`` replaces
        $SNAKEMAKE_GATE_URL."""
        self.store = store
        self._environ = os.environ if environ is None else environ
        self._base = (url or self._environ.get(ENV_URL, "")).strip().rstrip("/") or None
        self._signer = LinkSigner(store.root, store.share) if self._base else None
        self.notifier = Notifier.from_env(
            self._environ,
            links=self._link if self._base else None,
            on_success=self._delivered,
            on_failure=self._failed,
            **kwargs,
        )
        extra = [t for t in (targets or "").split(",") if t.strip()]
        self.notifier.targets += parse_targets(extra, "--hybrid-gate-notify", self._environ)
        self.notifier.check(self.notifier.targets)

    def targets(self, spec: GateSpec) -> list[Target]:
        """The gate's own targets ($NAME addresses read now); InvalidInput if unusable."""
        targets = parse_targets(spec.notify, origin="notify", environ=self._environ)
        self.notifier.check(targets)
        return targets

    def announce(self, record: GateRecord) -> None:
        """Queue the news of ``record`` (asked, decided or timed out); returns at once."""
        try:
            targets = self.targets(record.spec)
        except Exception as e:  # e.g. a variable unset since start-up: audited, not raised
            self._failed("notify", event_of(record), record.id, str(e))
            targets = []
        self.notifier.notify(event_of(record), record, targets)

    def close(self, timeout: float = 5.0) -> bool:
        return self.notifier.close(timeout)

    def _link(self, record: GateRecord, action: str, act_as: str | None) -> str | None:
        if action == "page":
            return page_url(self._base, record.id)
        if self._signer is None or act_as is None or action not in ("approve", "reject"):
            return None
        ttl = LINK_TTL
        if record.spec.timeout is not None:
            ttl = min(ttl, record.created + record.spec.timeout - time.time())
        if ttl <= 0:
            return None
        one_click = cast(Literal["approve", "reject"], action)
        token = self._signer.mint(record.id, one_click, act_as, ttl, time.time())
        return link_url(self._base, token)

    def _delivered(self, target: str, event: str, gate_id: str) -> None:
        self.store.audit.append("notified", gate_id, "notifier", target=target, news=event)

    def _failed(self, target: str, event: str, gate_id: str, error: str) -> None:
        self.store.audit.append(
            "notify-failed", gate_id, "notifier", target=target, news=event, error=error
        )
