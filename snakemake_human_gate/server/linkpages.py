"""One-click links: ``GET /l/TOKEN`` shows what the link would do, ``POST`` does it.

GET never spends the link (mail scanners and chat previews open links); the page's
button POSTs to the same URL, which redeems the link (once) and decides the gate as
the user the link was minted for. The server acts on the link's signed claim (gate,
action, user), never on anything else in the request. Every refusal is audited and
answered with a page.
"""

import time
from dataclasses import dataclass

from ..auth import AuthError
from ..errors import GateError, InvalidInput, UnknownGate
from ..links import LinkClaim, LinkSigner
from ..news import News
from ..record import Decision, GateRecord, iso
from ..store import GateStore
from .pages import Page
from .security import UNKNOWN_ACTOR, Caller, Guard, Refused, classify
from .urls import page_url

GONE = {"expired-link", "used-link", "stale-link"}  # 410; any other bad link is 403
_MESSAGES = {
    "expired-link": "This link has expired.",
    "used-link": "This link has been used already: each link works once.",
    "stale-link": "This gate was asked again since this link was sent (reopened, or its "
    "question changed): use the link of the newest message, or the dashboard.",
}


class _Answer(Exception):
    """Stop here and answer with this page."""

    def __init__(self, page: Page) -> None:
        super().__init__(page.title)
        self.page = page


@dataclass
class LinkPages:
    store: GateStore
    guard: Guard
    signer: LinkSigner
    news: News
    public_url: str | None = None

    def show(self, token: str, client: str) -> Page:
        """The confirmation page (spends nothing)."""
        try:
            claim, record = self._claim(token, client)
            if record.decision is not None:
                return self._decided(record.id, record.decision)
            self._check_decidable(record, claim, Caller(claim.user, f"link@{client}", client))
        except _Answer as e:
            return e.page
        verb = claim.action.capitalize()
        return Page(
            200,
            f"{verb}: {record.spec.question}",
            lines=(
                f"This link lets {claim.user} {claim.action} this gate, once, until "
                f"{iso(claim.expires)}. Nothing happens until you press the button.",
            ),
            facts=self._facts(record),
            button=verb,
            action=claim.action,
            dashboard=self._dashboard(record.id),
        )

    def act(self, token: str, client: str) -> Page:
        """Spend the link and decide; a page saying what happened."""
        try:
            claim, record = self._claim(token, client)
            caller = Caller(claim.user, f"link@{client}", client)
            self._check_decidable(record, claim, caller, audit=True)
            try:
                self.signer.redeem(token, time.time(), gate=claim.gate, action=claim.action)
            except AuthError as e:
                raise _Answer(self._bad_link(e, client, record.id)) from None
        except _Answer as e:
            return e.page
        try:
            record = self.store.decide(
                record.id, claim.action, {}, actor=claim.user, via=caller.via
            )
        except GateError as e:  # audited by the store
            status, _, _ = classify(e)
            return Page(status, "Not recorded", (str(e),), dashboard=self._dashboard(record.id))
        if record.decision is not None:
            record = self.news.send_safely(record)  # this server announces what it decides
        if record.decision is None:
            agreeing = sum(1 for v in record.votes if v.choice == claim.action)
            title = f"Vote recorded: {claim.action}"
            line = f"{agreeing} of {record.spec.quorum} agreeing answers so far."
        else:
            title = f"Recorded: {claim.action}"
            by = ", ".join(record.decision.by)
            line = f"Gate {record.id} is decided: {claim.action} by {by}."
        return Page(200, title, (line,), self._facts(record), dashboard=self._dashboard(record.id))

    # -- helpers ----------------------------------------------------------------------

    def _claim(self, token: str, client: str) -> tuple[LinkClaim, GateRecord]:
        try:
            self.guard.check_limit(client, time.time())
        except Refused as e:
            raise _Answer(Page(429, "Too many failed attempts", (e.detail,))) from None
        try:
            claim = self.signer.peek(token, time.time())
        except AuthError as e:
            raise _Answer(self._bad_link(e, client, None)) from None
        try:
            record = self.store.current(claim.gate)
        except (UnknownGate, InvalidInput) as e:
            caller = Caller(claim.user, f"link@{client}", client)
            self.guard.audit(UnknownGate(str(e)), caller, claim.gate)
            page = Page(404, "No such gate", (f"Gate {claim.gate} no longer exists.",))
            raise _Answer(page) from None
        if claim.asked is not None and claim.asked != record.created:
            error = AuthError(
                f"this link was made for an earlier asking of gate {record.id} (it was "
                "reopened or redefined since)",
                "stale-link",
            )
            raise _Answer(self._bad_link(error, client, record.id))
        return claim, record

    def _bad_link(self, error: AuthError, client: str, gate: str | None) -> Page:
        self.guard.limiter.record_failure(client, time.time())
        caller = Caller(UNKNOWN_ACTOR, f"link@{client}", client)
        self.guard.audit(error, caller, gate, reason="bad link", link=error.reason)
        if error.reason in GONE:
            return Page(410, "Link no longer valid", (_MESSAGES[error.reason],))
        return Page(403, "Invalid link", ("This link is not valid here.",))

    def _check_decidable(
        self, record: GateRecord, claim: LinkClaim, caller: Caller, *, audit: bool = False
    ) -> None:
        """A gate whose answer needs field values cannot be decided by a link."""
        try:
            record.spec.validate_values(claim.action, {})
        except InvalidInput as e:
            if audit:
                self.guard.audit(e, caller, record.id, reason="needs fields")
            page = Page(
                422,
                "Use the dashboard for this gate",
                (f"To {claim.action} this gate, values must be given: {e}.",),
                self._facts(record),
                dashboard=self._dashboard(record.id),
            )
            raise _Answer(page) from None

    def _decided(self, gid: str, decision: Decision) -> Page:
        return Page(
            409,
            "Already decided",
            (
                f"Gate {gid} was decided: {decision.choice} by {', '.join(decision.by)} "
                f"at {decision.at}.",
            ),
            dashboard=self._dashboard(gid),
        )

    def _facts(self, record: GateRecord) -> tuple[tuple[str, str], ...]:
        facts = [("Question", record.spec.question), ("Gate", record.id), ("Rule", record.rule)]
        if record.wildcards:
            facts.append(("Wildcards", ", ".join(f"{k}={v}" for k, v in record.wildcards.items())))
        facts.append(("Asked", f"{iso(record.created)} by {record.requested_by}"))
        facts += [("Artifact", item["path"]) for item in record.inputs]
        return tuple(facts)

    def _dashboard(self, gid: str) -> str:
        return page_url(self.public_url, gid)
