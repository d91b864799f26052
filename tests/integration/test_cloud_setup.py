"""scripts/cloud/up and down: the emulated AWS (moto on loopback, Batch jobs as real podman
containers) that the cloud backend is tested against."""

import os
import subprocess
import sys
import time
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CLOUD_ENV_FILE, REPO, aws, parse_exports, wait_until

SCRIPTS = REPO / "scripts" / "cloud"
STARTED = CLOUD_ENV_FILE.parent / "started"
LOG_GROUP = "/aws/batch/job"

pytestmark = pytest.mark.cloud


def script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPTS / name), *args],
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "HYBRID_VENV": sys.prefix},
    )


def image_id(image: str) -> str:
    return subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Id}}", image],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def submit(env: dict[str, str], image: str, command: str, **container: Any) -> str:
    """Register a job definition for ``command`` in ``image`` and submit it; the job id."""
    batch = aws(env, "batch")
    name = f"setup-test-{uuid.uuid4().hex[:8]}"
    definition = batch.register_job_definition(
        jobDefinitionName=name,
        type="container",
        containerProperties={
            "image": image,
            "command": ["/bin/bash", "-c", command],
            "jobRoleArn": env["HYBRID_TEST_BATCH_ROLE"],
            "resourceRequirements": [
                {"type": "VCPU", "value": "1"},
                {"type": "MEMORY", "value": "512"},
            ],
            **container,
        },
    )
    return batch.submit_job(
        jobName=name,
        jobQueue=env["HYBRID_TEST_BATCH_QUEUE"],
        jobDefinition=definition["jobDefinitionArn"],
    )["jobId"]


def describe(env: dict[str, str], job_id: str) -> dict[str, Any]:
    return aws(env, "batch").describe_jobs(jobs=[job_id])["jobs"][0]


def finished(env: dict[str, str], job_id: str, timeout: float = 120) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job = describe(env, job_id)
        return job if job["status"] in ("SUCCEEDED", "FAILED") else None

    return wait_until(done, timeout, f"Batch job {job_id} to finish")


def log_lines(env: dict[str, str], job: dict[str, Any]) -> list[str]:
    events = aws(env, "logs").get_log_events(
        logGroupName=LOG_GROUP, logStreamName=job["container"]["logStreamName"]
    )["events"]
    return [event["message"] for event in events]


def running_containers(image: str) -> list[str]:
    """Names of the running podman containers of ``image``."""
    return subprocess.run(
        ["podman", "ps", "--filter", f"ancestor={image}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()


def test_up_again_is_fast_and_keeps_everything(cloud):
    images = {
        cloud[key]: image_id(cloud[key]) for key in ("HYBRID_TEST_IMAGE", "HYBRID_TEST_IMAGE_ALT")
    }
    start = time.monotonic()
    again = script("up", "--print-env")
    seconds = time.monotonic() - start
    assert again.returncode == 0, again.stderr
    assert seconds < 15, f"a warm up took {seconds:.1f} s:\n{again.stderr}"
    assert parse_exports(again.stdout) == cloud  # same queue, role, bucket, images
    assert "created=[]" in again.stderr  # nothing was created again
    assert {image: image_id(image) for image in images} == images  # nor rebuilt
    assert again.stdout.splitlines() == [
        line for line in again.stdout.splitlines() if line.startswith("export ")
    ]


def test_printed_environment_reaches_the_emulated_aws(cloud):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "HYBRID_TEST_BATCH_EXECUTION_ROLE"):
        assert cloud[key]
    assert cloud["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    queue = aws(cloud, "batch").describe_job_queues(jobQueues=[cloud["HYBRID_TEST_BATCH_QUEUE"]])
    [queue] = queue["jobQueues"]
    assert (queue["state"], queue["status"]) == ("ENABLED", "VALID")
    [order] = queue["computeEnvironmentOrder"]
    [compute] = aws(cloud, "batch").describe_compute_environments(
        computeEnvironments=[order["computeEnvironment"]]
    )["computeEnvironments"]
    assert (compute["type"], compute["status"]) == ("UNMANAGED", "VALID")
    role = cloud["HYBRID_TEST_BATCH_ROLE"].rsplit("/", 1)[1]
    assert (
        aws(cloud, "iam").get_role(RoleName=role)["Role"]["Arn"] == cloud["HYBRID_TEST_BATCH_ROLE"]
    )
    s3 = aws(cloud, "s3")
    key = f"setup-test/{uuid.uuid4().hex}"
    s3.put_object(Bucket=cloud["HYBRID_TEST_BUCKET"], Key=key, Body=b"hello")
    body = s3.get_object(Bucket=cloud["HYBRID_TEST_BUCKET"], Key=key)["Body"].read()
    s3.delete_object(Bucket=cloud["HYBRID_TEST_BUCKET"], Key=key)
    assert body == b"hello"
    # the same variables work for a client that reads them from the environment
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import boto3; print(boto3.client('sts').get_caller_identity()['Account'])",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **cloud},
        timeout=60,
    )
    assert probe.returncode == 0 and probe.stdout.strip() == "123456789012", probe.stderr


def test_batch_job_runs_as_a_podman_container_and_logs_to_cloudwatch(cloud):
    token = uuid.uuid4().hex
    job_id = submit(
        cloud,
        cloud["HYBRID_TEST_IMAGE"],
        f"cat {cloud['HYBRID_TEST_IMAGE_MARKER_FILE']}; echo token=$TOKEN; snakemake --version;"
        " python -c 'import snakemake_storage_plugin_s3, snakemake_executor_hybrid';"
        " echo to-stderr >&2; sleep 3",
        environment=[{"name": "TOKEN", "value": token}],
    )
    # while it runs, it is a container of the image in podman, named after the job
    names = wait_until(
        lambda: [n for n in running_containers(cloud["HYBRID_TEST_IMAGE"]) if job_id in n],
        60,
        "the job's podman container",
    )
    assert len(names) == 1
    job = finished(cloud, job_id)
    assert job["status"] == "SUCCEEDED", job
    lines = log_lines(cloud, job)
    assert job["container"]["logStreamName"] == f"{job['jobName']}/default/{job_id}"
    assert lines[:3] == ["hybrid-cloud", f"token={token}", version("snakemake")], lines
    assert "to-stderr" in lines
    assert not [n for n in running_containers(cloud["HYBRID_TEST_IMAGE"]) if job_id in n]


def test_job_in_the_alternative_image_sees_its_marker(cloud):
    assert image_id(cloud["HYBRID_TEST_IMAGE_ALT"]) != image_id(cloud["HYBRID_TEST_IMAGE"])
    job = finished(
        cloud,
        submit(
            cloud, cloud["HYBRID_TEST_IMAGE_ALT"], f"cat {cloud['HYBRID_TEST_IMAGE_MARKER_FILE']}"
        ),
    )
    assert job["status"] == "SUCCEEDED", job
    assert log_lines(cloud, job) == ["hybrid-cloud-alt"]


def test_failing_job_is_failed_with_its_stderr_in_the_log(cloud):
    job = finished(cloud, submit(cloud, cloud["HYBRID_TEST_IMAGE"], "echo it broke >&2; exit 3"))
    assert job["status"] == "FAILED"
    assert log_lines(cloud, job) == ["it broke"]


def test_down_stops_what_up_started_and_up_recreates_it(cloud):
    if not (STARTED / "moto.pid").exists():
        pytest.skip("moto was not started by scripts/cloud/up (others are not ours to stop)")
    containers_service = Path("/run/hybrid-containers/started/podman-service.pid")
    before = containers_service.read_text() if containers_service.exists() else None
    # a job still running when moto stops leaves its container behind: down removes it
    job_id = submit(cloud, cloud["HYBRID_TEST_IMAGE"], "sleep 600")
    wait_until(lambda: describe(cloud, job_id)["status"] == "RUNNING", 60, "the job to run")
    wait_until(
        lambda: [n for n in running_containers(cloud["HYBRID_TEST_IMAGE"]) if job_id in n],
        60,
        "the job's container",
    )
    try:
        down = script("down")
        assert down.returncode == 0, down.stderr
        assert "moto(pid" in down.stdout and "batch-job-containers(1)" in down.stdout
        assert not CLOUD_ENV_FILE.exists() and not list(STARTED.glob("*.pid"))
        assert not [n for n in running_containers(cloud["HYBRID_TEST_IMAGE"]) if job_id in n]
        # the containers component's API service (if any) is not ours
        after = containers_service.read_text() if containers_service.exists() else None
        assert after == before
        again = script("down")
        assert again.returncode == 0 and "stopped=[]" in again.stdout
    finally:
        up = script("up", "--print-env")
    assert up.returncode == 0, up.stderr
    assert "moto=started" in up.stderr and "verify-batch-job=" in up.stderr
    queue = cloud["HYBRID_TEST_BATCH_QUEUE"].rsplit(":", 1)[1]  # job-queue/NAME
    assert queue in up.stderr  # moto forgot it: created again
    assert parse_exports(up.stdout) == cloud
