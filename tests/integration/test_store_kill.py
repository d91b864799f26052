"""Deciders and the server killed with SIGKILL at random moments: afterwards no decision
is visible without its audit entry, none is doubled, none that was acknowledged is lost,
and the audit log verifies.

Three loops (a few hundred kills in all, about half a minute here): deciders forked from
this process, each killed a random fraction of a decision's time after it starts (so
that many die between writing the answer and writing its audit entry); real
``snakemake-gate decide`` processes killed during their run; and ``snakemake-gate serve``
killed while clients decide through it. Each loop prints its figures (run with -s).
"""

import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from snakemake_human_gate.auth import TokenStore
from snakemake_human_gate.store import GateStore
from tests.integration.gateserver import GATE_CLI, ask, server_process

pytestmark = pytest.mark.integration

FORKED = 600
CLI = 40
SERVER_KILLS = 20
SEED = int(os.environ.get("KILL_LOOP_SEED", time.time()))


def make_gates(root: Path, count: int) -> tuple[GateStore, list[str]]:
    """``count`` pending gates: one asked through the store, the others copies of its
    record under other ids (asking thousands, each flushed, would take a while)."""
    store = GateStore(root / "gates")
    first = ask(store, root)
    template = json.loads(store.path(first.id).read_text())
    ids = [first.id]
    for n in range(1, count):
        gid = f"review-{n:012x}"
        store.path(gid).write_text(json.dumps({**template, "id": gid}))
        store.answers_path(gid).write_bytes(b"")
        ids.append(gid)
    return store, ids


def check(root: Path, ids: list[str], acknowledged: dict[str, str]) -> dict[str, int]:
    """Read every gate as a new process would (answers left by the killed are settled
    then), check the invariants, and count what there is."""
    store = GateStore(root / "gates")
    decided = {gid: store.get(gid).decision for gid in ids}
    entries = [e for e in store.audit.entries() if e["gate"] in decided]
    audited = Counter(e["gate"] for e in entries if e["event"] == "decided")
    for gid, decision in decided.items():
        if decision is None:
            assert audited[gid] == 0, f"{gid}: a decided entry, but no decision"
            assert gid not in acknowledged, f"{gid}: acknowledged, then lost"
        else:
            assert audited[gid] == 1, f"{gid}: decided, with {audited[gid]} decided entries"
            assert decision.by == [acknowledged.get(gid, decision.by[0])]
    verdict = store.audit.verify()
    assert verdict.ok, verdict.problem
    return {
        "decisions": sum(d is not None for d in decided.values()),
        "decided entries": sum(audited.values()),
        "gaps (answers discarded)": sum(e["event"] == "discarded" for e in entries),
        "audit entries": verdict.entries,
    }


def report(name: str, figures: dict[str, int]) -> None:
    shown = ", ".join(f"{k} {v}" for k, v in figures.items())
    print(f"\nkill loop, {name} (seed {SEED}): {shown}")


def test_forked_deciders_killed_at_random_moments(tmp_path):
    rng = random.Random(SEED)
    store, ids = make_gates(tmp_path, FORKED + 20)

    def decider(gid: str, actor: str) -> int:
        pid = os.fork()
        if pid == 0:
            try:
                store.decide(gid, "approve", actor=actor)
            finally:
                os._exit(0)
        return pid

    took = []
    for gid in ids[FORKED:]:  # how long a forked decider lives here, now
        start = time.perf_counter()
        os.waitpid(decider(gid, "calibration"), 0)
        took.append(time.perf_counter() - start)
    # kill a random moment into [0, span]; the span follows the machine's pace (a busy
    # machine slows the deciders): shorter after a decider finished first, longer after
    # one was killed, so that about two thirds are killed, at every stage of a decision
    span = statistics.median(took)
    killed = 0
    for n, gid in enumerate(ids[:FORKED]):
        pid = decider(gid, f"u{n}")
        time.sleep(rng.uniform(0, span))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        killed += os.WIFSIGNALED(status)
        span *= 1.05 if os.WIFSIGNALED(status) else 0.9
    figures = check(tmp_path, ids[:FORKED], {})
    report("forked deciders", {"kills": killed, "finished first": FORKED - killed, **figures})
    assert FORKED // 4 < killed < FORKED


def test_decide_commands_killed_at_random_moments(tmp_path):
    rng = random.Random(SEED)
    _, ids = make_gates(tmp_path, CLI + 1)
    argv = [*GATE_CLI, "--dir", str(tmp_path / "gates"), "approve"]
    start = time.perf_counter()
    subprocess.run([*argv, ids[-1]], check=True, stdout=subprocess.DEVNULL)
    run_time = time.perf_counter() - start  # mostly Python starting: the writes come last
    killed = 0
    for gid in ids[:CLI]:
        proc = subprocess.Popen([*argv, gid], stdout=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.7, 1.2) * run_time)
        proc.send_signal(signal.SIGKILL)
        killed += proc.wait(30) == -signal.SIGKILL
    figures = check(tmp_path, ids[:CLI], {})
    report("snakemake-gate approve", {"kills": killed, "finished first": CLI - killed, **figures})


def test_the_server_killed_while_deciding(tmp_path):
    rng = random.Random(SEED)
    store, ids = make_gates(tmp_path, 200 * SERVER_KILLS)
    token = TokenStore(store.root, store.share).create("alice")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    acknowledged: dict[str, str] = {}
    todo = list(ids)
    for _ in range(SERVER_KILLS):
        with server_process(store.root, "--port", "0") as (url, proc):
            host, port = url.rsplit("/", 1)[-1].split(":")
            stop = threading.Event()
            started = threading.Barrier(3)
            conns = [http.client.HTTPConnection(host, int(port), timeout=10) for _ in range(2)]

            def client(conn: http.client.HTTPConnection, started=started, stop=stop) -> None:
                conn.request("GET", "/api/me", headers=headers)  # connected and warm
                conn.getresponse().read()
                started.wait()
                while todo and not stop.is_set():
                    gid = todo.pop()
                    try:
                        body = b'{"choice": "approve"}'
                        conn.request("POST", f"/api/gates/{gid}/decision", body, headers)
                        answer = conn.getresponse()
                        answer.read()
                        if answer.status == 200:
                            acknowledged[gid] = "alice"
                    except (OSError, http.client.HTTPException):
                        return  # killed: the client does not know what became of it

            threads = [threading.Thread(target=client, args=(conn,)) for conn in conns]
            for thread in threads:
                thread.start()
            started.wait()
            time.sleep(rng.uniform(0.01, 0.3))
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            stop.set()
            for thread in threads:
                thread.join(30)
    figures = check(tmp_path, ids, acknowledged)
    report(
        "snakemake-gate serve",
        {"kills": SERVER_KILLS, "acknowledged": len(acknowledged), **figures},
    )
    assert acknowledged and todo  # the rounds decided some, and were cut short
