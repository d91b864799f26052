"""``snakemake-gate serve --workers N``: the parent deals connections to its workers in
turn, skips a worker that died, ends with its workers and they with it, and a Ctrl-C
stops them gracefully, once."""

import http.client
import os
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from snakemake_human_gate.signatures import SENDER_HEADER, Target, sign_request
from snakemake_human_gate.store import GateStore
from snakemake_human_gate.webhooks import WebhookSecrets
from tests.integration.gateserver import GATE_CLI, server_process, wait_answering


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def served_connections(port: int) -> set[int]:
    """Socket inodes of the established TCP connections whose local port is ``port``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                inodes.add(int(fields[9]))
    return inodes


def sockets_of(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def connection(url: str) -> http.client.HTTPConnection:
    address = urlsplit(url)
    return http.client.HTTPConnection(address.hostname, address.port, timeout=30)


def connect(url: str, count: int) -> list[http.client.HTTPConnection]:
    """``count`` keep-alive connections opened at once (as by a proxy's pool or a load
    test), each then answered once (so that a worker holds it)."""
    conns = [connection(url) for _ in range(count)]
    for conn in conns:
        conn.connect()
    for conn in conns:
        conn.request("GET", "/openapi.json")
        answer = conn.getresponse()
        answer.read()
        assert answer.status == 200
    return conns


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def get(url: str, path: str, headers: dict[str, str]) -> int:
    """The status of ``GET path`` on a connection of its own (so: dealt to the next worker)."""
    conn = connection(url)
    try:
        conn.request("GET", path, headers=headers)
        answer = conn.getresponse()
        answer.read()
        return answer.status
    finally:
        conn.close()


@pytest.fixture
def two_workers(tmp_path):
    store = tmp_path / "gates"
    with server_process(store, "--port", "0", "--workers", "2") as (url, proc):
        wait_answering(url)
        yield url, proc


def test_connections_are_dealt_to_the_workers_in_turn(two_workers):
    url, proc = two_workers
    port = int(url.rsplit(":", 1)[1])
    conns = connect(url, 6)
    try:
        served = served_connections(port)
        assert len(served) >= 6
        workers = children(proc.pid)
        assert len(workers) == 2
        assert sorted(len(sockets_of(w) & served) for w in workers) == [3, 3]
        assert not sockets_of(proc.pid) & served  # the parent keeps none open
    finally:
        for conn in conns:
            conn.close()


def test_a_signed_request_is_refused_again_by_the_other_worker_and_after_a_restart(tmp_path):
    store = tmp_path / "gates"
    secret = WebhookSecrets(store, "private").add("chatbot", "alice")
    signed = sign_request(secret.encode(), b"", int(time.time()), Target("GET", "/api/me"))
    headers = {SENDER_HEADER: "chatbot", **signed}
    with server_process(store, "--port", "0", "--workers", "2") as (url, _):
        wait_answering(url)
        assert get(url, "/api/me", headers) == 200
        assert get(url, "/api/me", headers) == 401  # the next connection: the other worker
    with server_process(store, "--port", "0", "--workers", "2") as (url, _):
        wait_answering(url)
        assert get(url, "/api/me", headers) == 401
    replayed = [e for e in GateStore(store).audit.entries() if e.get("auth") == "replayed"]
    assert len(replayed) == 2


def test_a_worker_that_died_is_skipped(two_workers):
    url, proc = two_workers
    dead, alive = children(proc.pid)
    os.kill(dead, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while running(dead):
        assert time.monotonic() < deadline, "the killed worker still runs"
        time.sleep(0.05)
    conns = connect(url, 4)  # each answered: none was dealt to the dead one
    for conn in conns:
        conn.close()
    assert proc.poll() is None and running(alive)


def test_the_server_process_ends_when_every_worker_has(two_workers):
    _, proc = two_workers
    for worker in children(proc.pid):
        os.kill(worker, signal.SIGKILL)
    assert proc.wait(30) == 1


def test_the_workers_do_not_outlive_the_server_process(two_workers):
    url, proc = two_workers
    workers = children(proc.pid)
    [conn] = connect(url, 1)
    proc.kill()
    proc.wait(30)
    deadline = time.monotonic() + 30
    while any(running(w) for w in workers):
        assert time.monotonic() < deadline, "the workers still run without their parent"
        time.sleep(0.1)
    conn.close()


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
def test_a_signal_to_the_process_group_stops_the_workers_gracefully(tmp_path, signum, status):
    """Ctrl-C in a terminal (SIGINT), or a service manager stopping the unit (SIGTERM)."""
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*GATE_CLI, "--dir", str(tmp_path / "gates"), "serve", "--port", "0", "--workers", "2"],
            stdout=out,
            stderr=out,
            start_new_session=True,  # its own process group, as a shell gives a command
        )
    try:
        deadline = time.monotonic() + 30
        while log.read_text().count("Application startup complete") < 2:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        os.killpg(proc.pid, signum)  # the whole group gets it
        assert proc.wait(30) == status  # (130 for SIGINT: as with one worker)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert text.count("Application shutdown complete") == 2 and "Traceback" not in text, text
