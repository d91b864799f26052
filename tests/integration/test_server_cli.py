"""``snakemake-gate serve`` as users run it (a real process), the token and webhook
commands, and the signing examples of docs/webhook.md run against a live server."""

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
import requests

from snakemake_human_gate.store import GateStore
from tests.conftest import REPO
from tests.integration.gateserver import GATE_CLI, ask, live_server, serve_process, wait_answering

EXAMPLES = REPO / "docs" / "examples"


def cli(store, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*GATE_CLI, "--dir", str(store), *args], capture_output=True, text=True, timeout=60
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def store(tmp_path):
    return GateStore(tmp_path / "gates")


def test_serve_with_tokens_made_and_revoked_by_the_cli(store):
    created = cli(store.root, "token", "create", "alice", "--label", "laptop", "--expires", "1d")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("sgt_") and "shown once" in created.stderr
    listed = cli(store.root, "token", "list", "--json")
    [info] = json.loads(listed.stdout)
    assert info["user"] == "alice" and info["label"] == "laptop" and info["expires"]
    assert cli(store.root, "token", "create", "bob", "--expires", "0").returncode == 2
    with serve_process(store.root, "--port", "0") as url:
        assert url.startswith("http://127.0.0.1:")
        headers = {"Authorization": f"Bearer {token}"}
        assert requests.get(f"{url}/api/me", headers=headers, timeout=30).json() == {
            "user": "alice"
        }
        revoked = cli(store.root, "token", "revoke", info["id"])
        assert revoked.returncode == 0, revoked.stderr
        assert requests.get(f"{url}/api/me", headers=headers, timeout=30).status_code == 401
    events = [e["event"] for e in store.audit.entries()]
    assert events[:1] == ["token-created"] and "token-revoked" in events


def test_serve_with_several_workers(store, tmp_path):
    record = ask(store, tmp_path)
    token = cli(store.root, "token", "create", "alice").stdout.strip()
    port = free_port()
    with serve_process(store.root, "--port", str(port), "--workers", "2") as url:
        wait_answering(url)
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(4):  # spread over the workers
            assert requests.get(f"{url}/api/gates", headers=headers, timeout=30).ok
        decided = requests.post(
            f"{url}/api/gates/{record.id}/decision",
            json={"choice": "approve"},
            headers=headers,
            timeout=30,
        )
        assert decided.status_code == 200, decided.text
    assert store.get(record.id).decision.by == ["alice"]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_over_tls(store, tmp_path, workers):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    token = cli(store.root, "token", "create", "alice").stdout.strip()
    args = ("--port", "0", "--tls-cert", str(cert), "--tls-key", str(key), "--workers", workers)
    with serve_process(store.root, *args) as url:
        assert url.startswith("https://127.0.0.1:")
        headers = {"Authorization": f"Bearer {token}"}
        with requests.get(f"{url}/api/me", headers=headers, verify=str(cert), timeout=30) as answer:
            assert answer.json() == {"user": "alice"}  # (with: a TLS socket lives as long)
        with pytest.raises(requests.ConnectionError):
            requests.get(url.replace("https:", "http:") + "/api/me", timeout=30)
        with requests.get(f"{url}/api/me", headers=headers, verify=str(cert), timeout=30) as again:
            assert again.status_code == 200  # the failed handshake harmed nothing else


def test_serve_refuses_options_that_cannot_work(store, tmp_path):
    half = cli(store.root, "serve", "--tls-cert", str(tmp_path / "cert.pem"))
    assert half.returncode == 2 and "--tls-cert and --tls-key go together" in half.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = cli(store.root, "serve", "--port", str(taken.getsockname()[1]))
    assert busy.returncode == 2 and "cannot listen on 127.0.0.1" in busy.stderr


def test_serve_without_the_server_extra_says_how_to_install_it(store):
    code = (
        "import sys; sys.modules['fastapi'] = None\n"
        "from snakemake_human_gate.cli import main\n"
        f"sys.exit(main(['--dir', {str(store.root)!r}, 'serve']))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 1
    assert "pip install 'snakemake-executor-plugin-hybrid[server]'" in run.stderr


def test_the_cli_and_package_do_not_import_the_server():
    code = (
        "import sys, snakemake_human_gate, snakemake_human_gate.cli\n"
        "heavy = [m for m in ('fastapi', 'uvicorn', 'starlette', 'pydantic',"
        " 'snakemake_human_gate.server.app') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


# -- the docs' signing examples, for real ---------------------------------------------------


@pytest.fixture
def signed_sender(store, tmp_path):
    added = cli(store.root, "webhook", "add", "chatbot", "--user", "alice")
    assert added.returncode == 0, added.stderr
    assert cli(store.root, "webhook", "list").stdout.split() == ["chatbot", "alice"]
    with live_server(store.root) as url:
        env = {
            **os.environ,
            "GATE_URL": url,
            "GATE_SENDER": "chatbot",
            "GATE_SECRET": added.stdout.strip(),
        }
        yield env


def test_python_signing_example_decides_a_gate(store, tmp_path, signed_sender):
    from snakemake_human_gate import gate

    record = ask(store, tmp_path, gate("Ship?", fields={"lr": float}))
    argv = [sys.executable, str(EXAMPLES / "sign_decision.py"), record.id, "approve"]
    refused = subprocess.run(argv, env=signed_sender, capture_output=True, text=True)
    assert refused.returncode == 1 and "refused (422): field 'lr' is required" in refused.stderr
    run = subprocess.run(
        [*argv, "--set", "lr=0.05", "--comment", "from a script"],
        env=signed_sender, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"{record.id}: decided"
    decision = store.get(record.id).decision
    assert (decision.by, decision.fields, decision.comment) == (
        ["alice"],
        {"lr": 0.05},
        "from a script",
    )


@pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("openssl")), reason="needs curl and openssl"
)
def test_curl_signing_example_decides_a_gate(store, tmp_path, signed_sender):
    record = ask(store, tmp_path)
    run = subprocess.run(
        ["sh", str(EXAMPLES / "sign_decision.sh"), record.id, "reject"],
        env=signed_sender, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert '"status":"decided"' in run.stdout
    assert store.get(record.id).decision.choice == "reject"
    wrong = {**signed_sender, "GATE_SECRET": "0" * 64}
    again = subprocess.run(
        ["sh", str(EXAMPLES / "sign_decision.sh"), record.id, "approve"],
        env=wrong, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert again.returncode != 0 and '"reason":"unauthenticated"' in again.stdout
