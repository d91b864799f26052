"""The gate server for tests: a real uvicorn on a loopback port, in a thread or a process."""

import contextlib
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
import uvicorn

from snakemake_human_gate import gate
from snakemake_human_gate.auth import TokenStore
from snakemake_human_gate.links import LinkSigner
from snakemake_human_gate.record import GateRecord
from snakemake_human_gate.server.app import create_app
from snakemake_human_gate.signatures import SENDER_HEADER, Target, sign_request
from snakemake_human_gate.spec import GateSpec
from snakemake_human_gate.store import GateStore
from snakemake_human_gate.webhooks import WebhookSecrets

GATE_CLI = [sys.executable, "-m", "snakemake_human_gate"]
MAX_BODY = 4096  # of the ``server`` fixture
_ANNOUNCED = re.compile(r"serving .* at (https?://[^/\s]+)")


@contextlib.contextmanager
def live_server(store_dir: Path, **options: Any) -> Iterator[str]:
    """``create_app(store_dir, **options)`` served on a free loopback port; its base URL."""
    app = create_app(store_dir, **options)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gate server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


@contextlib.contextmanager
def serve_process(store_dir: Path, *args: str, timeout: float = 30) -> Iterator[str]:
    """``snakemake-gate serve`` as a real process; the URL it announces."""
    with server_process(store_dir, *args, timeout=timeout) as (url, _):
        yield url


@contextlib.contextmanager
def server_process(
    store_dir: Path, *args: str, timeout: float = 30
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``snakemake-gate serve`` as a real process: the URL it announces, and the process.

    Its output goes to a file next to the store (a pipe nobody reads would stall it).
    """
    log = store_dir.parent / f"serve-{time.monotonic_ns()}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*GATE_CLI, "--dir", str(store_dir), "serve", *args], stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + timeout
        while not (match := _ANNOUNCED.search(log.read_text())):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"serve announced no address:\n{log.read_text()}")
            time.sleep(0.05)
        yield match[1], proc
    finally:
        proc.terminate()
        proc.wait(30)


def wait_answering(url: str, timeout: float = 30, **kwargs: Any) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(f"{url}/openapi.json", timeout=5, **kwargs)
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def ask(
    store: GateStore,
    workdir: Path,
    spec: GateSpec | None = None,
    *,
    name: str = "review",
    run: str = "1",
    files: dict[str, bytes] | None = None,
    requested_by: str = "runner",
) -> GateRecord:
    """A pending gate asked through the store, with artifact files made in ``workdir``."""
    files = files if files is not None else {f"metrics-{name}-{run}.json": b'{"loss": 0.1}'}
    paths = []
    for file_name, content in files.items():
        path = workdir / file_name
        path.write_bytes(content)
        paths.append(path)
    record, _ = store.ask(
        rule=name,
        wildcards={"run": run},
        inputs=paths,
        output=workdir / "out" / f"{name}-{run}.json",
        spec=spec or gate("Ship it?"),
        requested_by=requested_by,
    )
    return record


def audit(store: GateStore) -> list[dict[str, Any]]:
    return list(store.audit.entries())


def json_bytes(data: Any) -> bytes:
    return json.dumps(data).encode()


class Server:
    """A live server over a fresh store, with tokens for alice, bob, eve and runner."""

    def __init__(self, root: Path, url: str) -> None:
        self.url = url
        self.store = GateStore(root / "gates")
        self.workdir = root
        tokens = TokenStore(self.store.root, self.store.share)
        self.tokens = {user: tokens.create(user) for user in ("alice", "bob", "eve", "runner")}
        self.webhooks = WebhookSecrets(self.store.root, self.store.share)
        self.secret = self.webhooks.add("chatbot", "alice").encode()
        self.links = LinkSigner(self.store.root, self.store.share)

    def auth(self, user: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def get(self, path: str, user: str | None = "alice", **kwargs: Any) -> requests.Response:
        headers = {**(self.auth(user) if user else {}), **kwargs.pop("headers", {})}
        return requests.get(self.url + path, headers=headers, timeout=30, **kwargs)

    def post(
        self,
        path: str,
        body: bytes | dict,
        user: str | None = "alice",
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """POST ``body`` as JSON (``Content-Type: application/json`` unless ``headers``
        say otherwise)."""
        data = body if isinstance(body, bytes) else json_bytes(body)
        all_headers = {
            "Content-Type": "application/json",
            **(self.auth(user) if user else {}),
            **(headers or {}),
        }
        return requests.post(self.url + path, data=data, headers=all_headers, timeout=30)

    def decide(self, gid: str, body: bytes | dict, user: str = "alice") -> requests.Response:
        return self.post(f"/api/gates/{gid}/decision", body, user)

    def signed(
        self,
        body: bytes,
        *,
        path: str = "/hooks/decision",
        timestamp: float | None = None,
        secret: bytes | None = None,
    ) -> dict[str, str]:
        """chatbot's headers for a POST of ``body`` to ``path``."""
        stamp = int(time.time() if timestamp is None else timestamp)
        signed = sign_request(secret or self.secret, body, stamp, Target("POST", path))
        return {SENDER_HEADER: "chatbot", **signed}

    def ask(self, spec: GateSpec | None = None, **kwargs: Any) -> GateRecord:
        return ask(self.store, self.workdir, spec, **kwargs)

    def link(self, gid: str, action: str = "approve", user: str = "alice", ttl: float = 600) -> str:
        return self.links.mint(gid, action, user, ttl=ttl, now=time.time())  # type: ignore[arg-type]
