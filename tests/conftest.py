"""Shared helpers: run the real Snakemake CLI, make sure the real SLURM is up."""

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.receiver import Receiver

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = Path(__file__).resolve().parent / "integration" / "workflows"


def snakemake(
    workdir: Path, *args: str, timeout: float = 600, **kwargs
) -> subprocess.CompletedProcess:
    """Run ``python -m snakemake`` in ``workdir`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        **kwargs,
    )


_STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _reap_background_runs():
    """A test that fails half-way must not leave its Snakemake (and its jobs) running."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


def start(wd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Snakemake in the background, in its own session (a test can signal or kill it
    and everything it started), with SIGINT as in an interactive terminal even if the
    tests run with it ignored."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "snakemake", *args],
        cwd=wd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        env=env,
    )
    _STARTED.append(proc)
    return proc


def wait_until(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None):
    """Poll ``predicate`` until it returns something true; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(
                f"snakemake exited ({proc.returncode}) while waiting for {what}:\n{output}"
            )
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def copy_workflow(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copytree(WORKFLOWS / name, target)
    return target


def _slurm_answers() -> bool:
    if shutil.which("sinfo") is None:
        return False
    try:
        probe = subprocess.run(["sinfo", "--noheader"], capture_output=True, timeout=10)
        accounting = subprocess.run(
            ["sacct", "--noheader", "-X", "-j", "1"], capture_output=True, timeout=10
        )
    except subprocess.TimeoutExpired:
        return False
    return probe.returncode == 0 and accounting.returncode == 0


@pytest.fixture(scope="session")
def slurm() -> None:
    """A running single-node SLURM with accounting, started by scripts/slurm/up if needed.

    Skips only where it cannot run (not root, no apt); with HYBRID_REQUIRE_SLURM=1
    (as in CI) a missing SLURM fails the tests instead.
    """
    if not _slurm_answers():
        reason = None
        if os.geteuid() != 0:
            reason = "SLURM is not running and starting it needs root"
        elif shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
            reason = "SLURM is not running and cannot be installed here (no apt-get)"
        else:
            set_up("slurm/up", until=_slurm_answers)
        if reason:
            if os.environ.get("HYBRID_REQUIRE_SLURM") == "1":
                pytest.fail(reason)
            pytest.skip(reason)


SLURM_STATE = (
    ["squeue", "--all", "--format=%.8i %.10T %.20r %.6C %.10M %.10l %j"],
    ["sinfo", "--Node", "--long"],
    ["sinfo", "--list-reasons"],
)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """A failing test that used SLURM reports the queue and the node as well: a job
    pending for a reason that never clears shows up as a hang otherwise."""
    report = yield
    uses_slurm = "slurm" in getattr(item, "fixturenames", ()) or item.get_closest_marker("slurm")
    if report.failed and call.when == "call" and uses_slurm:
        lines = []
        for argv in SLURM_STATE:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                run = subprocess.run(argv, capture_output=True, text=True, timeout=20)
                lines.append(f"$ {' '.join(argv)}\n{run.stdout}{run.stderr}")
        report.sections.append(("SLURM at the failure", "\n".join(lines)))
    return report


def set_up(
    script: str,
    *args: str,
    until: Callable[[], bool] = lambda: True,
    env: dict[str, str] | None = None,
) -> None:
    """Run ``scripts/SCRIPT`` (installs and starts a component); fail the test if it
    fails or ``until`` still says no afterwards."""
    up = subprocess.run(
        [str(REPO / "scripts" / script), *args],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    if up.returncode != 0 or not until():
        pytest.fail(f"scripts/{script} {' '.join(args)} failed:\n{up.stdout}\n{up.stderr}")


TEST_IMAGE = "localhost/hybrid-test:bookworm"


def _image_present() -> bool:
    if shutil.which("podman") is None:
        return False
    probe = subprocess.run(["podman", "image", "exists", TEST_IMAGE], capture_output=True)
    return probe.returncode == 0


@pytest.fixture(scope="session")
def podman() -> str:
    """Podman with the test image, built by scripts/containers/up if needed; its name.

    Skips only where it cannot be set up (not root, no apt); with
    HYBRID_REQUIRE_CONTAINERS=1 (as in CI) that fails the tests instead.
    """
    if not _image_present():
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            reason = "podman with the test image is missing and installing it needs root and apt"
            if os.environ.get("HYBRID_REQUIRE_CONTAINERS") == "1":
                pytest.fail(reason)
            pytest.skip(reason)
        set_up("containers/up", until=_image_present)
    return TEST_IMAGE


DOCKER_SOCKET = "unix:///run/podman/podman.sock"


@pytest.fixture(scope="session")
def docker(podman) -> dict[str, str]:
    """The docker CLI talking to podman's Docker-compatible API; the environment for it."""
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI on PATH")
    set_up("containers/up", "--docker-socket")
    return {**os.environ, "DOCKER_HOST": DOCKER_SOCKET}


CLOUD_ENV_FILE = Path(os.environ.get("HYBRID_CLOUD_STATE_DIR", "/run/hybrid-cloud")) / "env"


def parse_exports(text: str) -> dict[str, str]:
    """``export KEY=VALUE`` lines (as ``scripts/cloud/up --print-env`` prints them) -> dict."""
    env = {}
    for line in text.splitlines():
        if line.startswith("export "):
            key, _, value = shlex.split(line[len("export ") :])[0].partition("=")
            env[key] = value
    return env


def aws(env: dict[str, str], service: str) -> Any:
    """A boto3 client for ``service`` of the emulated AWS described by ``env``."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2}),
    )


def _cloud_answers() -> dict[str, str] | None:
    """The environment of a running emulated AWS whose queue, bucket and image exist."""
    try:
        env = parse_exports(CLOUD_ENV_FILE.read_text())
        import boto3  # noqa: F401  (the [test] extra)
        from botocore.exceptions import BotoCoreError, ClientError
    except (OSError, ImportError):
        return None
    if shutil.which("podman") is None:
        return None
    try:
        queues = aws(env, "batch").describe_job_queues(jobQueues=[env["HYBRID_TEST_BATCH_QUEUE"]])
        aws(env, "s3").head_bucket(Bucket=env["HYBRID_TEST_BUCKET"])
    except (KeyError, BotoCoreError, ClientError):
        return None
    images = [
        subprocess.run(["podman", "image", "exists", env[key]], capture_output=True).returncode
        for key in ("HYBRID_TEST_IMAGE", "HYBRID_TEST_IMAGE_ALT")
    ]
    return env if queues["jobQueues"] and images == [0, 0] else None


@pytest.fixture(scope="session")
def cloud() -> dict[str, str]:
    """The emulated AWS (moto + podman, scripts/cloud/up), started if needed: the variables
    of ``scripts/cloud/up --print-env`` (AWS_ENDPOINT_URL, HYBRID_TEST_BATCH_QUEUE ...).

    Skips only where it cannot be set up (not root, no apt); with HYBRID_REQUIRE_CLOUD=1
    (as in CI) that fails the tests instead.
    """
    env = _cloud_answers()
    if env is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            reason = "the emulated AWS is not running and starting it needs root and apt"
            if os.environ.get("HYBRID_REQUIRE_CLOUD") == "1":
                pytest.fail(reason)
            pytest.skip(reason)
        # the job image gets the Snakemake version of the venv running the tests
        set_up(
            "cloud/up",
            until=lambda: _cloud_answers() is not None,
            env={**os.environ, "HYBRID_VENV": sys.prefix},
        )
        env = _cloud_answers()
    assert env is not None
    return env


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local HTTP server standing in for a webhook, Slack or Mattermost."""
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def squeue_ids(name: str | None = None) -> list[str]:
    argv = ["squeue", "--noheader", "--format=%i"]
    if name:
        argv.append(f"--name={name}")
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()


def sacct_jobs(name: str) -> dict[str, str]:
    """Job id -> state of every allocation SLURM accounted under this job name."""
    out = subprocess.run(
        [
            "sacct",
            "-X",
            "--parsable2",
            "--noheader",
            "--format=JobID,State",
            f"--name={name}",
            "--starttime=now-1days",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split("|", 1) for line in out.splitlines() if line)


def slurm_run_id(output: str) -> str:
    for line in output.splitlines():
        if line.startswith("SLURM run ID:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no 'SLURM run ID' in output:\n{output}")
