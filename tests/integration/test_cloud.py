"""Rules on AWS Batch in the same run as local and SLURM rules, against the emulated AWS
(moto on loopback, Batch jobs as real podman containers; scripts/cloud/up)."""

import os
import re
import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import aws, copy_workflow, snakemake, start, wait_until
from tests.integration.tcpproxy import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.cloud]

MOTO_LOG = Path("/var/log/hybrid-cloud/moto.log")  # written by scripts/cloud/up


def hybrid_args(env: dict[str, str], prefix: str, *extra: str) -> list[str]:
    return [
        "--executor", "hybrid",
        "--jobs", "10",
        "--default-storage-provider", "s3",
        "--default-storage-prefix", f"s3://{env['HYBRID_TEST_BUCKET']}/{prefix}",
        "--aws-batch-region", env["AWS_DEFAULT_REGION"],
        "--aws-batch-job-queue", env["HYBRID_TEST_BATCH_QUEUE"],
        "--aws-batch-job-role", env["HYBRID_TEST_BATCH_ROLE"],
        "--envvars", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
        "--hybrid-slurm-status-interval", "1",
        "--hybrid-cloud-status-interval", "1",
        "--config", f"image={env['HYBRID_TEST_IMAGE']}",
        f"alt_image={env['HYBRID_TEST_IMAGE_ALT']}",
        *extra,
    ]  # fmt: skip


def run_env(env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **env}


def s3_text(env: dict[str, str], key: str) -> str:
    body = aws(env, "s3").get_object(Bucket=env["HYBRID_TEST_BUCKET"], Key=key)["Body"]
    return body.read().decode()


def uploads(prefix: str) -> Counter:
    """PUTs of each object under ``prefix`` that the S3 server received (anyone's)."""
    pattern = re.compile(rf'"PUT /[^/ ]+/{re.escape(prefix)}/(\S+) HTTP')
    return Counter(m[1].split("?")[0] for m in pattern.finditer(MOTO_LOG.read_text()))


def transfers(output: str, verb: str) -> Counter:
    """Files Snakemake's main process retrieved ('Retrieving') or stored ('Storing')."""
    pattern = re.compile(rf"^{verb} (?:from|in) storage: s3://[^/]+/[^/]+/(\S+)", re.M)
    return Counter(pattern.findall(output))


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm")
def test_one_run_local_aws_batch_slurm_local_each_file_crosses_once(tmp_path, cloud):
    wd = copy_workflow("cloud", tmp_path)
    prefix = f"mixed-{uuid.uuid4().hex[:8]}"
    run = snakemake(wd, *hybrid_args(cloud, prefix), env=run_env(cloud))
    output = run.stdout + run.stderr
    assert run.returncode == 0, output

    report = s3_text(cloud, f"{prefix}/report.txt").splitlines()
    assert report[0] == str(sum(range(1, 31)))  # every shard's part arrived
    assert report.count("hybrid-cloud") == 3  # each shard ran in the image on Batch
    assert re.fullmatch(r"slurm:\d+", report[-1])  # gathered in a SLURM job
    for i in range(3):
        assert "-> aws-batch" in output and f"shards/{i}.txt" in output

    stored, retrieved = transfers(output, "Storing"), transfers(output, "Retrieving")
    put = uploads(prefix)
    shards = [f"shards/{i}.txt" for i in range(3)]
    for shard in shards:  # written by its Batch job, never uploaded again from here
        assert put[shard] == 1 and stored[shard] == 0, (put, stored)
        assert retrieved[shard] == 1  # downloaded once, for the SLURM job that reads it
    assert stored["data/numbers.txt"] == 1 and retrieved["data/numbers.txt"] == 0
    assert not set(stored) & set(retrieved), "a file went down and up again"
    assert stored["gathered.txt"] == 0  # the SLURM job's own Snakemake stored it
    s3, bucket = aws(cloud, "s3"), cloud["HYBRID_TEST_BUCKET"]
    sizes = {
        key: s3.head_object(Bucket=bucket, Key=f"{prefix}/{key}")["ContentLength"]
        for key in set(stored) | set(retrieved)
    }
    moved = sum(sizes[k] * (stored[k] + retrieved[k]) for k in sizes)
    assert moved == sum(sizes.values())  # every byte crossed once (measured: bytes moved)

    rerun = snakemake(wd, *hybrid_args(cloud, prefix), env=run_env(cloud))
    assert rerun.returncode == 0 and "Nothing to be done" in rerun.stdout + rerun.stderr

    definitions = aws(cloud, "batch").describe_job_definitions(status="ACTIVE")["jobDefinitions"]
    ours = [d for d in definitions if d["jobDefinitionName"].startswith("snakemake-hybrid-")]
    assert ours
    for definition in ours:  # no secret value, no environment at all, not privileged
        container = definition["containerProperties"]
        assert cloud["AWS_SECRET_ACCESS_KEY"] not in str(container.get("environment", []))
        assert not container.get("environment") and not container.get("privileged")


def test_rules_run_in_their_own_images(tmp_path, cloud):
    wd = copy_workflow("cloud", tmp_path)
    prefix = f"images-{uuid.uuid4().hex[:8]}"
    args = hybrid_args(cloud, prefix, "--keep-storage-local-copies")
    run = snakemake(wd, *args, "--", "alt.txt", "shards/0.txt", env=run_env(cloud))
    assert run.returncode == 0, run.stdout + run.stderr
    assert s3_text(cloud, f"{prefix}/alt.txt").strip() == "hybrid-cloud-alt"
    # a protected output gets a write-protected local copy (and is not uploaded again)
    local = wd / ".snakemake" / "storage" / "s3" / cloud["HYBRID_TEST_BUCKET"] / prefix / "alt.txt"
    assert local.read_text().strip() == "hybrid-cloud-alt" and not local.stat().st_mode & 0o222
    assert uploads(prefix)["alt.txt"] == 1
    assert s3_text(cloud, f"{prefix}/shards/0.txt").splitlines()[0] == "hybrid-cloud"


def test_a_failing_cloud_command_shows_its_stderr(tmp_path, cloud):
    wd = copy_workflow("cloud", tmp_path)
    prefix = f"fail-{uuid.uuid4().hex[:8]}"
    args = hybrid_args(cloud, prefix, "fail=1")
    run = snakemake(wd, *args, "--", "shards/1.txt", env=run_env(cloud))
    output = run.stdout + run.stderr
    assert run.returncode == 1
    assert re.search(r"AWS Batch job \S+ ended FAILED", output), output
    assert "Last lines of the job's log" in output
    assert "shard 1 broke on purpose" in output  # the command's own stderr, from CloudWatch


def test_ctrl_c_terminates_the_running_batch_job(tmp_path, cloud):
    wd = copy_workflow("cloud", tmp_path)
    prefix = f"cancel-{uuid.uuid4().hex[:8]}"
    args = hybrid_args(cloud, prefix, "seconds=300")
    proc = start(wd, *args, "--", "slow.txt", env=run_env(cloud))
    batch = aws(cloud, "batch")
    queue = cloud["HYBRID_TEST_BATCH_QUEUE"]

    def running_job():
        for job in batch.list_jobs(jobQueue=queue, jobStatus="RUNNING")["jobSummaryList"]:
            if job["jobName"].startswith("snakejob-slow-"):
                detail = batch.describe_jobs(jobs=[job["jobId"]])["jobs"][0]
                if detail.get("tags", {}).get("snakemake-hybrid-run"):
                    return job["jobId"]
        return None

    job_id = wait_until(running_job, 90, "the slow job RUNNING in Batch", proc)
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode != 0

    def terminated():
        job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
        return job["status"] == "FAILED" and job

    job = wait_until(terminated, 60, f"Batch job {job_id} terminated")
    assert "cancelled by Snakemake" in job.get("statusReason", "")


def test_an_endpoint_that_goes_away_ends_the_run_with_its_name(tmp_path, cloud):
    wd = copy_workflow("cloud", tmp_path)
    prefix = f"gone-{uuid.uuid4().hex[:8]}"
    host, port = cloud["AWS_ENDPOINT_URL"].removeprefix("http://").split(":")
    proxy = TcpProxy(host, int(port))
    env = {**cloud, "AWS_ENDPOINT_URL": proxy.url}
    args = hybrid_args(env, prefix, "seconds=120")
    proc = start(wd, *args, "--hybrid-cloud-unreachable-after", "10", "--", "slow.txt",
                 env=run_env(env))  # fmt: skip
    wait_until(
        lambda: (
            (wd / ".snakemake" / "log").exists()
            and any(
                "is AWS Batch job" in p.read_text()
                for p in (wd / ".snakemake" / "log").glob("*.log")
            )
        ),
        90,
        "the job submitted",
        proc,
    )
    proxy.stop()
    stopped = time.monotonic()
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert time.monotonic() - stopped < 90  # bounded: 10 s plus bounded call timeouts
    assert f"AWS Batch at {proxy.url} has not answered for 10 s" in output, output


def without(args: list[str], flag: str) -> list[str]:
    at = args.index(flag)
    return args[:at] + args[at + 2 :]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda a: without(without(a, "--default-storage-provider"), "--default-storage-prefix"),
            "Add --default-storage-provider s3 --default-storage-prefix s3://BUCKET/PATH",
        ),
        (
            lambda a: [x if not x.startswith("arn:aws:batch") else "nope" for x in a],
            "AWS Batch job queue 'nope' does not exist",
        ),
        (lambda a: without(a, "--aws-batch-job-role"), "--aws-batch-job-role is not set"),
    ],
    ids=["no-storage", "unknown-queue", "no-role"],
)
def test_start_up_errors_stop_the_run_before_any_job(tmp_path, cloud, change, message):
    wd = copy_workflow("cloud", tmp_path)
    args = change(hybrid_args(cloud, f"startup-{uuid.uuid4().hex[:8]}"))
    run = snakemake(wd, *args, "--", "alt.txt", env=run_env(cloud))
    assert run.returncode == 1
    assert message in run.stderr, run.stderr
    assert "is AWS Batch job" not in run.stdout + run.stderr
