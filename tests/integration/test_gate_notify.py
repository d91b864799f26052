"""A gated run under --executor hybrid tells people: asked, decided; a dead target
is audited and holds nothing up; hook URLs stay secret."""

import json
import os
import socket
import time

import requests

from snakemake_human_gate.links import LinkSigner
from snakemake_human_gate.store import GateStore
from tests.conftest import copy_workflow, start, wait_until
from tests.integration.gatehelp import audit, finish, gate_cli, wait_pending
from tests.integration.gateserver import live_server


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_hybrid_run_announces_the_gate_and_its_decision(tmp_path, receiver):
    wd = copy_workflow("gated", tmp_path)
    notify = ["webhook:$GATE_HOOK", "slack:${GATE_SLACK} as alice"]
    (wd / "config.json").write_text(json.dumps({"indep": 1, "gate": {"notify": notify}}))
    store = wd / ".snakemake" / "gates"
    env = {
        **os.environ,
        "GATE_HOOK": receiver.url("/hook/SECRET"),
        "GATE_SLACK": receiver.url("/services/SECRET"),
        "DEAD_HOOK": f"http://127.0.0.1:{closed_port()}/dead/SECRET",
        "SNAKEMAKE_GATE_URL": "https://gates.example.org/",
    }
    args = ("--executor", "hybrid", "--jobs", "2", "--configfile", "config.json")
    # a global target, its URL kept off the command line as $NAME
    proc = start(wd, *args, "--hybrid-gate-notify", "webhook:$DEAD_HOOK", env=env)
    (gate,) = wait_pending(store, 1, proc)
    wait_until(lambda: len(receiver.paths()) >= 2, 30, "two 'pending' notifications", proc)
    asked = {r["path"]: r["json"] for r in receiver.requests}
    generic, slack = asked["/hook/SECRET"], asked["/services/SECRET"]
    assert generic["event"] == "pending" and generic["gate"] == gate["id"]
    assert generic["question"] == "Launch the full training run?"
    page = f"https://gates.example.org/?gate={gate['id']}"
    # no 'as USER' on the generic target: a link to the page only, no one-click answers
    assert generic["links"] == {"page": page}
    buttons = {b["text"]["text"]: b["url"] for b in slack["blocks"][-1]["elements"]}
    assert buttons["Open"] == page
    assert buttons["Approve"].startswith("https://gates.example.org/l/")

    assert gate_cli(store, "approve", gate["id"], "--set", "lr=0.3").returncode == 0
    out = finish(proc)
    assert proc.returncode == 0, out
    wait_until(lambda: len(receiver.paths()) >= 4, 30, "two 'decided' notifications")
    decided = [r["json"] for r in receiver.requests if r["path"] == "/hook/SECRET"][-1]
    assert decided["event"] == "decided" and decided["decision"]["fields"] == {"lr": 0.3}

    entries = audit(store)
    notified = {(e["target"], e["news"]) for e in entries if e["event"] == "notified"}
    port = receiver.server_address[1]
    assert notified == {
        (f"webhook:http://127.0.0.1:{port}/***", "pending"),
        (f"webhook:http://127.0.0.1:{port}/***", "decided"),
        (f"slack:http://127.0.0.1:{port}/*** as alice", "pending"),
        (f"slack:http://127.0.0.1:{port}/*** as alice", "decided"),
    }
    failed = [e for e in entries if e["event"] == "notify-failed"]
    assert failed and all(e["target"].startswith("webhook:http://127.0.0.1:") for e in failed)
    assert "SECRET" not in out and "SECRET" not in (store / "audit.jsonl").read_text()


def test_unset_notification_variable_stops_the_run_before_it_starts(tmp_path):
    wd = copy_workflow("gated", tmp_path)
    (wd / "config.json").write_text(json.dumps({"gate": {"notify": ["slack:$NO_SUCH_HOOK"]}}))
    env = {k: v for k, v in os.environ.items() if k != "NO_SUCH_HOOK"}
    proc = start(wd, "--executor", "hybrid", "--jobs", "2", "--configfile", "config.json", env=env)
    out = finish(proc)
    assert proc.returncode == 1
    assert (
        "Rule 'review': gate notifications: notify: 'slack:$NO_SUCH_HOOK': environment "
        "variable NO_SUCH_HOOK is not set" in out
    )
    assert not (wd / "results" / "metrics.json").exists()


def test_signed_link_in_a_notification_decides_the_gate_once(tmp_path, receiver):
    wd = copy_workflow("gated", tmp_path)
    (wd / "config.json").write_text(
        json.dumps({"indep": 1, "gate": {"notify": ["slack:$GATE_SLACK as alice"]}})
    )
    store = wd / ".snakemake" / "gates"
    with live_server(store) as url:
        env = {
            **os.environ,
            "GATE_SLACK": receiver.url("/services/SECRET"),
            "SNAKEMAKE_GATE_URL": url,
        }
        args = ("--executor", "hybrid", "--jobs", "2", "--configfile", "config.json")
        proc = start(wd, *args, env=env)
        (gate,) = wait_pending(store, 1, proc)
        wait_until(lambda: receiver.paths(), 30, "the 'pending' message", proc)
        slack = receiver.requests[0]["json"]
        approve = {b["text"]["text"]: b["url"] for b in slack["blocks"][-1]["elements"]}["Approve"]
        assert approve.startswith(f"{url}/l/")

        shown = requests.get(approve, timeout=30)  # a chat preview or mail scanner
        assert shown.status_code == 200 and "Nothing happens until you press" in shown.text
        assert wait_pending(store, 1, proc)  # still pending: looking spends nothing
        used = requests.post(approve, timeout=30)
        assert used.status_code == 200, used.text
        out = finish(proc)
        assert proc.returncode == 0, out
        decision = json.loads((wd / "gates" / "review.json").read_text())
        assert decision["choice"] == "approve" and decision["by"] == ["alice"]

        again = requests.post(approve, timeout=30)
        assert again.status_code == 410 and "used already" in again.text
        signer = LinkSigner(store, GateStore(store).share)
        expired = signer.mint(gate["id"], "reject", "alice", ttl=1, now=time.time() - 60)
        late = requests.post(f"{url}/l/{expired}", timeout=30)
        assert late.status_code == 410 and "expired" in late.text
    refused = [e for e in audit(store) if e["event"] == "refused"]
    assert len(refused) == 2


def test_gate_await_under_snakemake_own_executor_announces_too(tmp_path, receiver):
    wd = copy_workflow("gated", tmp_path)
    (wd / "config.json").write_text(json.dumps({"indep": 1}))
    store = wd / ".snakemake" / "gates"
    env = {
        **os.environ,
        "SNAKEMAKE_GATE_DIR": str(store),
        "SNAKEMAKE_GATE_NOTIFY": f"webhook:{receiver.url('/hook')}",
    }
    proc = start(wd, "--cores", "2", "--configfile", "config.json", env=env)
    (gate,) = wait_pending(store, 1, proc)
    wait_until(lambda: receiver.paths(), 60, "the 'pending' message", proc)
    assert gate_cli(store, "reject", gate["id"], "--comment", "no").returncode == 0
    finish(proc)
    wait_until(lambda: len(receiver.paths()) >= 2, 30, "the 'decided' message")
    events = [r["json"]["event"] for r in receiver.requests]
    assert events == ["pending", "decided"]
    assert all(r["json"]["gate"] == gate["id"] for r in receiver.requests)
