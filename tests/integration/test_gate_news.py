"""News sent by whichever process is live: the gate server announces what it decides,
decisions made with the CLI while no run watches, reminders and escalations, each once."""

import copy
import time

from snakemake_human_gate import gate
from tests.conftest import wait_until
from tests.integration.gatehelp import audit, gate_cli
from tests.integration.gateserver import Server, live_server


def news_of(receiver, gid):
    with receiver.lock:
        return [r["json"]["event"] for r in receiver.requests if r["json"]["gate"] == gid]


def test_the_server_sends_the_news_of_its_store_each_once(tmp_path, receiver, monkeypatch):
    monkeypatch.setenv("SNAKEMAKE_GATE_NOTIFY", f"webhook:{receiver.url('/hook')}")
    root = tmp_path / "work"
    root.mkdir()
    store_dir = root / "gates"
    options = {"news": True, "news_interval": 0.2}
    with live_server(store_dir, **options) as url, live_server(store_dir, **options) as other:
        server = Server(root, url)  # two servers over one store: still each news once
        second = copy.copy(server)
        second.url = other
        by_rest = server.ask(run="1")
        by_cli = server.ask(run="2")
        reminded = server.ask(gate("Still there?", remind=1.0), run="3")
        escalated = server.ask(
            gate("Ship?", approvers=["bob"], escalate={"after": 1.0, "to": ["eve"]}), run="4"
        )
        early = second.decide(escalated.id, {"choice": "approve"}, "eve")
        assert early.status_code == 403  # not before the escalation

        # what it decides through the REST API: announced at once
        assert server.decide(by_rest.id, {"choice": "approve"}).status_code == 200
        wait_until(lambda: news_of(receiver, by_rest.id) == ["decided"], 10, "the decision")

        # a decision made with the CLI while no run watches: the server announces it
        assert gate_cli(store_dir, "reject", by_cli.id).returncode == 0
        wait_until(lambda: news_of(receiver, by_cli.id) == ["decided"], 10, "the CLI's")

        # reminders, once per interval; the escalation: once, and eve may decide after it
        wait_until(lambda: len(news_of(receiver, reminded.id)) >= 2, 10, "two reminders")
        wait_until(lambda: news_of(receiver, escalated.id) == ["escalated"], 10, "escalation")
        answer = second.decide(escalated.id, {"choice": "approve"}, "eve")
        assert answer.status_code == 200, answer.text
        wait_until(lambda: len(news_of(receiver, escalated.id)) == 2, 10, "its decision")
        time.sleep(0.5)  # rounds of both servers after it

    reminders = [key for key in server.store.get(reminded.id).news if key.startswith("reminder")]
    sent = news_of(receiver, reminded.id)
    assert set(sent) == {"reminder"} and len(sent) == len(reminders)  # never twice
    assert news_of(receiver, by_rest.id) == ["decided"]
    assert news_of(receiver, escalated.id) == ["escalated", "decided"]
    entries = audit(store_dir)
    events = [(e["event"], e["actor"]) for e in entries if e["gate"] == escalated.id]
    assert events[:3] == [("asked", "runner"), ("refused", "eve"), ("escalated", "escalation")]
    assert ("decided", "eve") in events
    decided = next(e for e in entries if e["event"] == "decided" and e["gate"] == escalated.id)
    assert decided["as"] == "eve"  # admitted by the escalation, which the log shows first
    notified = [e["news"] for e in entries if e["event"] == "notified"]
    assert notified.count("decided") == 3 and notified.count("escalated") == 1
    assert gate_cli(store_dir, "audit", "--verify").returncode == 0
