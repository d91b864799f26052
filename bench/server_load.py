"""Load on the gate server: concurrent clients deciding distinct gates over HTTP.

    python bench/server_load.py --gates 1000 --clients 8 --workers 2

A temporary store gets ``--gates`` pending gates (asked through the store API) and one
bearer token per client; ``snakemake-gate serve`` runs as a real process on loopback;
``--clients`` threads, each with its own keep-alive connection (``http.client``, or a
``requests.Session`` with ``--requests``), decide their share of the gates through
``POST /api/gates/{id}/decision``. The clients run on the same machine: on a small one
the lighter client leaves more CPU to the server. Prints decisions/s and
latencies, then checks that every gate was decided exactly once, by the client that
was answered 200, in the gates' answers (one answer each) and in the audit log (whose hash
chain must verify), each decision confirmed by its audit entry.

``--settle SECONDS``: the clients start that long after the server answers. A server
(since reminders and escalation) first looks at every gate of its store in a thread of
its first worker; without a wait that look (about 0.07 s of CPU for 1,000 gates) runs
during the measurement and is counted in the server's CPU.

``--signed``: the server signs every audit entry with a registered key (needs the
``[signing]`` extra). ``--profile FILE`` then also decides ``--gates`` more gates
without HTTP (authentication and decision as the server does them, in one thread)
under cProfile: the time per decision that the store path takes, and its profile (by
own time) in FILE.
"""

import argparse
import cProfile
import http.client
import json
import os
import pstats
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from snakemake_human_gate import gate  # noqa: E402
from snakemake_human_gate.auth import TokenStore  # noqa: E402
from snakemake_human_gate.signing import ENV_KEY, make_signer, register  # noqa: E402
from snakemake_human_gate.store import GateStore, current_user  # noqa: E402


def make_store(
    root: Path, gates: int, clients: int, signed: bool = False
) -> tuple[GateStore, list[str], list[str]]:
    root.mkdir(parents=True)
    store = GateStore(root / "gates")
    if signed:  # a key for this user (the server's), registered as a server key
        os.environ[ENV_KEY] = str(root / "signing.key")
        signer = make_signer(current_user())
        register(store.tree, signer.user, signer.public, True, next_seq=1)
        store = GateStore(root / "gates")
    artifact = root / "metrics.json"
    artifact.write_text('{"loss": 0.1}')
    spec = gate("Ship it?")
    ids = []
    for n in range(gates):
        record, _ = store.ask(
            rule="review",
            wildcards={"run": str(n)},
            inputs=[artifact],
            output=root / "out" / f"{n}.json",
            spec=spec,
            requested_by="runner",
        )
        ids.append(record.id)
    tokens = TokenStore(store.root, store.share)
    return store, ids, [tokens.create(f"client-{c}") for c in range(clients)]


def start_server(store: GateStore, workers: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "snakemake_human_gate", "--dir", str(store.root), "serve",
         "--port", str(port), "--workers", str(workers)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"{url}/openapi.json", timeout=5)
            return proc, url
        except requests.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the server did not start") from None
            time.sleep(0.1)


Sender = Callable[[str, str, bytes | None], int]  # method, path, body -> HTTP status


def lean_client(url: str, token: str) -> tuple[Sender, Callable[[], None]]:
    """A keep-alive ``http.client`` connection: about 0.2 ms of CPU per request."""
    address = urlsplit(url)
    conn = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def send(method: str, path: str, body: bytes | None) -> int:
        conn.request(method, path, body, headers)
        response = conn.getresponse()
        response.read()
        return response.status

    return send, conn.close


def requests_client(url: str, token: str) -> tuple[Sender, Callable[[], None]]:
    """A keep-alive ``requests.Session``: about 1.5 ms of CPU per request."""
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}"})

    def send(method: str, path: str, body: bytes | None) -> int:
        headers = {"Content-Type": "application/json"} if body else {}
        answer = session.request(method, url + path, data=body, headers=headers, timeout=60)
        return answer.status_code

    return send, session.close


def run_clients(
    url: str, ids: list[str], tokens: list[str], make_client=lean_client
) -> tuple[float, list, list]:
    """Each client decides every len(tokens)-th gate; wall seconds, answers, latencies."""
    answers: list[tuple[str, str, int]] = []  # gate, client, status
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(tokens) + 1)
    body = json.dumps({"choice": "approve"}).encode()

    def client(number: int) -> None:
        send, close = make_client(url, tokens[number])
        try:
            send("GET", "/api/me", None)  # connect before the clock starts
            barrier.wait()
            for gid in ids[number :: len(tokens)]:
                start = time.perf_counter()
                status = send("POST", f"/api/gates/{gid}/decision", body)
                took = time.perf_counter() - start
                with lock:
                    answers.append((gid, f"client-{number}", status))
                    latencies.append(took)
        finally:
            close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(len(tokens))]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start, answers, latencies


def tree_cpu(pid: int) -> tuple[float, float]:
    """User and system CPU seconds used so far by a process and its descendants."""
    user = system = 0.0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            user += int(fields[11]) / os.sysconf("SC_CLK_TCK")
            system += int(fields[12]) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue
    return user, system


def verify(store: GateStore, ids: list[str], answers: list[tuple[str, str, int]]) -> list[str]:
    """Every gate decided exactly once, by whom the API said; the problems found."""
    problems = []
    statuses = Counter(status for _, _, status in answers)
    if statuses != Counter({200: len(ids)}):
        problems.append(f"answers: {dict(statuses)} (expected {len(ids)} x 200)")
    deciders = {gid: client for gid, client, status in answers if status == 200}
    for gid in ids:
        decision = store.get(gid).decision
        if decision is None or decision.by != [deciders.get(gid)]:
            problems.append(f"{gid}: recorded {decision}, answered for {deciders.get(gid)}")
        lines = [json.loads(line) for line in store.answers_path(gid).read_text().splitlines()]
        answers = [line for line in lines if "id" in line]
        acks = [line["ack"] for line in lines if "ack" in line]
        if [a["decision"] is not None for a in answers] != [True] or acks != [answers[0]["id"]]:
            problems.append(f"{gid}: answers file holds {lines}, not one confirmed decision")
    entries = list(store.audit.entries())
    decided = Counter(e["gate"] for e in entries if e["event"] == "decided")
    if set(decided) != set(ids) or set(decided.values()) != {1}:
        twice = [g for g, n in decided.items() if n != 1]
        problems.append(f"audit: {len(decided)} gates decided, {len(twice)} more than once")
    refused = [e for e in entries if e["event"] == "refused"]
    if refused:
        problems.append(f"audit: {len(refused)} refusals, first {refused[0]}")
    verdict = store.audit.verify()
    if not verdict.ok:
        problems.append(f"audit chain: {verdict.problem}")
    return problems


def profile_store_path(root: Path, gates: int, out: str) -> float:
    """Seconds per decision of authentication + decision without HTTP; profile to ``out``."""
    from snakemake_human_gate.announce import Announcer
    from snakemake_human_gate.auth import FailureLimiter
    from snakemake_human_gate.news import News
    from snakemake_human_gate.server.gates import Gates
    from snakemake_human_gate.server.security import Guard
    from snakemake_human_gate.signatures import Target
    from snakemake_human_gate.webhooks import WebhookSecrets

    store, ids, [token] = make_store(root, gates, 1)
    guard = Guard(
        store,
        TokenStore(store.root, store.share),
        WebhookSecrets(store.root, store.share),
        FailureLimiter(10, 60),
    )
    decide = Gates(store, guard, News(store, Announcer(store))).decide
    headers, body = {"Authorization": f"Bearer {token}"}, b'{"choice": "approve"}'
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for gid in ids:
        target = Target("POST", f"/api/gates/{gid}/decision")
        decide(guard.authenticate(headers, body, "127.0.0.1", target), gid, body)
    profiler.disable()
    elapsed = time.perf_counter() - start
    with open(out, "w") as f:
        pstats.Stats(profiler, stream=f).sort_stats("tottime").print_stats(30)
    return elapsed / gates


def machine_speed() -> float:
    """Seconds a fixed pure-Python loop takes now: the same figure on a shared or virtual
    machine swings with its neighbours, and so does every result of this benchmark."""
    start, total = time.perf_counter(), 0
    for i in range(5_000_000):
        total += i
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gates", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--dir", help="where the temporary stores go (default: $TMPDIR)")
    parser.add_argument("--profile", metavar="FILE", help="also profile the store path")
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores")
    parser.add_argument(
        "--signed",
        action="store_true",
        help="the server signs its audit entries (a registered ed25519 key)",
    )
    parser.add_argument(
        "--requests",
        action="store_true",
        help="clients use the requests library (heavier) instead of http.client",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long after the server answers before the clients start: the "
        "server's first look at every gate of the store (its news round) done",
    )
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="gate-load-", dir=args.dir))
    try:
        start = time.perf_counter()
        store, ids, tokens = make_store(root / "load", args.gates, args.clients, args.signed)
        print(f"{args.gates} gates asked in {time.perf_counter() - start:.1f} s ({root})")
        proc, url = start_server(store, args.workers)
        time.sleep(args.settle)
        try:
            server_before, client_cpu = tree_cpu(proc.pid), time.process_time()
            make_client = requests_client if args.requests else lean_client
            elapsed, answers, latencies = run_clients(url, ids, tokens, make_client)
            server_after = tree_cpu(proc.pid)
            server_user, server_system = (
                after - before for after, before in zip(server_after, server_before, strict=True)
            )
            client_cpu = time.process_time() - client_cpu
        finally:
            proc.terminate()
            proc.wait(60)
        quantiles = statistics.quantiles(latencies, n=100)
        client = "requests" if args.requests else "http.client"
        print(
            f"{len(answers)} decisions by {args.clients} {client} clients, {args.workers} server "
            f"worker(s), in {elapsed:.2f} s: {len(answers) / elapsed:.0f} decisions/s; "
            f"latency p50 {quantiles[49] * 1000:.1f} ms, p99 {quantiles[98] * 1000:.1f} ms, "
            f"max {max(latencies) * 1000:.1f} ms"
        )
        print(
            f"CPU per decision: server {server_user / len(answers) * 1000:.2f} ms user + "
            f"{server_system / len(answers) * 1000:.2f} ms system, "
            f"clients {client_cpu / len(answers) * 1000:.2f} ms ({os.cpu_count()} CPUs; "
            f"a fixed Python loop took {machine_speed():.2f} s)"
        )
        problems = verify(store, ids, answers)
        for problem in problems:
            print(f"PROBLEM: {problem}")
        if not problems:
            print("every decision recorded exactly once (answers and audit log; chain verified)")
        if args.profile:
            per = profile_store_path(root / "profile", args.gates, args.profile)
            print(
                f"store path without HTTP, one thread: {per * 1000:.2f} ms per decision "
                f"(profile: {args.profile})"
            )
        return 1 if problems else 0
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
