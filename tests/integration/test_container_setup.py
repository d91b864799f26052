"""scripts/containers/up when the podman API service it started has lost its working
directory (started from a checkout that was removed since): conmon cannot run containers
for it any more, so up must not reuse it."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

STARTED = Path(os.environ.get("HYBRID_CONTAINERS_STATE_DIR", "/run/hybrid-containers"))
SCRIPTS = REPO / "scripts" / "containers"


def script(name: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPTS / name), *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def service_pid() -> int:
    return int((STARTED / "started" / "podman-service.pid").read_text().split()[0])


@pytest.fixture
def own_service(docker):
    """Skip unless the API service is one scripts/containers/up started (others are not
    ours to stop); the docker fixture's service is running again afterwards."""
    if not (STARTED / "started" / "podman-service.pid").exists():
        pytest.skip("the podman API service was not started by scripts/containers/up")
    yield
    assert script("up", "--docker-socket").returncode == 0


def test_up_starts_the_api_service_from_root(tmp_path, own_service):
    assert script("down").returncode == 0
    up = script("up", "--docker-socket", cwd=tmp_path)  # e.g. a CI clone, removed later
    assert up.returncode == 0, up.stderr
    assert os.readlink(f"/proc/{service_pid()}/cwd") == "/"


def test_up_restarts_an_api_service_whose_directory_was_removed(tmp_path, docker, own_service):
    assert script("down").returncode == 0
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    # a service as an older up started it: from the caller's directory
    start = subprocess.run(
        [
            "bash",
            "-c",
            f"source {SCRIPTS}/lib.sh; setsid podman system service --time=0 $SOCKET_URL "
            "</dev/null >/dev/null 2>&1 & pid=$!; record_started podman-service podman $pid; "
            "until socket_ok; do sleep 0.1; done",
        ],
        cwd=checkout,
        timeout=60,
    )
    assert start.returncode == 0
    pid = service_pid()
    shutil.rmtree(checkout)

    again = script("up", "--docker-socket", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"restarting podman system service (pid {pid})" in again.stderr
    assert "docker-cli=ok" in again.stdout
    assert service_pid() != pid and os.readlink(f"/proc/{service_pid()}/cwd") == "/"
    run = subprocess.run(
        ["docker", "run", "--rm", "--network=host", "localhost/hybrid-test:bookworm", "true"],
        env=docker,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
