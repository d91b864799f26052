"""AWS side of scripts/cloud/up, run by the Python of moto's venv (it has boto3).

    aws.py provision                 create what is missing: roles, compute environment,
                                     job queue, bucket; print KEY=VALUE lines
    aws.py verify IMAGE MARKER_FILE  run one Batch job in IMAGE that prints MARKER_FILE;
                                     print the file's content as read from CloudWatch Logs

The endpoint, region and credentials come from the environment (AWS_ENDPOINT_URL ...),
the resource names from HYBRID_CLOUD_* variables (see scripts/cloud/README.md).
Idempotent: moto keeps its state in memory, so after a restart everything is created again.
"""

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

PREFIX = os.environ.get("HYBRID_CLOUD_PREFIX", "hybrid-test")
QUEUE = f"{PREFIX}-queue"
COMPUTE_ENV = f"{PREFIX}-compute"
BUCKET = os.environ.get("HYBRID_CLOUD_BUCKET", f"{PREFIX}-bucket")
JOB_ROLE = f"{PREFIX}-batch-job-role"
EXECUTION_ROLE = f"{PREFIX}-batch-execution-role"
SERVICE_ROLE = f"{PREFIX}-batch-service-role"
LOG_GROUP = "/aws/batch/job"  # where moto (and Batch by default) writes job logs

CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3})


def client(service: str) -> Any:
    return boto3.client(service, config=CONFIG)


def trust(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def policy(actions: list[str], resources: list[str]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resources}],
        }
    )


# name -> (trusted service, inline policy actions, resources)
ROLES: dict[str, tuple[str, list[str], list[str]]] = {
    # the job's own credentials: its data in the bucket
    JOB_ROLE: (
        "ecs-tasks.amazonaws.com",
        ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"],
        [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
    ),
    # what Batch (ECS) uses to start the container: pull the image, write its logs
    EXECUTION_ROLE: (
        "ecs-tasks.amazonaws.com",
        [
            "ecr:GetAuthorizationToken",
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
        ],
        ["*"],
    ),
    # the compute environment's service role
    SERVICE_ROLE: ("batch.amazonaws.com", ["ec2:*", "ecs:*", "logs:*"], ["*"]),
}


def ensure_role(iam: Any, name: str, created: list[str]) -> str:
    service, actions, resources = ROLES[name]
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchEntity":
            raise
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust(service))["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=name, PolicyName=f"{name}-policy", PolicyDocument=policy(actions, resources)
    )
    created.append(f"role/{name}")
    return arn


def wait_for(what: str, probe: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            sys.exit(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def ensure_compute_env(batch: Any, service_role: str, created: list[str]) -> str:
    def describe() -> list[dict[str, Any]]:
        found = batch.describe_compute_environments(computeEnvironments=[COMPUTE_ENV])
        return found["computeEnvironments"]

    if not describe():
        batch.create_compute_environment(
            computeEnvironmentName=COMPUTE_ENV,
            type="UNMANAGED",
            state="ENABLED",
            serviceRole=service_role,
        )
        created.append(f"compute-environment/{COMPUTE_ENV}")
    wait_for(f"compute environment {COMPUTE_ENV}", lambda: describe()[0]["status"] == "VALID")
    return describe()[0]["computeEnvironmentArn"]


def ensure_queue(batch: Any, created: list[str]) -> str:
    def describe() -> list[dict[str, Any]]:
        return batch.describe_job_queues(jobQueues=[QUEUE])["jobQueues"]

    if not describe():
        batch.create_job_queue(
            jobQueueName=QUEUE,
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": COMPUTE_ENV}],
        )
        created.append(f"job-queue/{QUEUE}")
    wait_for(f"job queue {QUEUE}", lambda: describe()[0]["status"] == "VALID")
    return describe()[0]["jobQueueArn"]


def ensure_bucket(s3: Any, created: list[str]) -> None:
    try:
        s3.head_bucket(Bucket=BUCKET)
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
            raise
        s3.create_bucket(Bucket=BUCKET)
        created.append(f"bucket/{BUCKET}")


def provision() -> None:
    created: list[str] = []
    iam = client("iam")
    arns = {name: ensure_role(iam, name, created) for name in ROLES}
    batch = client("batch")
    ensure_compute_env(batch, arns[SERVICE_ROLE], created)
    queue = ensure_queue(batch, created)
    ensure_bucket(client("s3"), created)
    print(f"HYBRID_TEST_BATCH_QUEUE={queue}")
    print(f"HYBRID_TEST_BATCH_ROLE={arns[JOB_ROLE]}")
    print(f"HYBRID_TEST_BATCH_EXECUTION_ROLE={arns[EXECUTION_ROLE]}")
    print(f"HYBRID_TEST_BUCKET={BUCKET}")
    print(f"CREATED={' '.join(created) or 'none'}")


def verify(image: str, marker_file: str, timeout: float = 120) -> None:
    """One real Batch job: moto starts it as a container through podman's API."""
    batch, logs = client("batch"), client("logs")
    started = time.monotonic()
    definition = batch.register_job_definition(
        jobDefinitionName=f"{PREFIX}-verify",
        type="container",
        containerProperties={
            "image": image,
            "command": ["cat", marker_file],
            "jobRoleArn": client("iam").get_role(RoleName=JOB_ROLE)["Role"]["Arn"],
            "resourceRequirements": [
                {"type": "VCPU", "value": "1"},
                {"type": "MEMORY", "value": "512"},
            ],
        },
    )
    try:
        job_id = batch.submit_job(
            jobName=f"{PREFIX}-verify",
            jobQueue=QUEUE,
            jobDefinition=definition["jobDefinitionArn"],
        )["jobId"]
        while True:
            job = batch.describe_jobs(jobs=[job_id])["jobs"][0]
            if job["status"] in ("SUCCEEDED", "FAILED"):
                break
            if time.monotonic() - started > timeout:
                batch.terminate_job(jobId=job_id, reason="scripts/cloud/up: verification timed out")
                sys.exit(
                    f"the verification job {job_id} is still {job['status']} after {timeout} s"
                )
            time.sleep(0.2)
    finally:
        batch.deregister_job_definition(jobDefinition=definition["jobDefinitionArn"])
    stream = job.get("container", {}).get("logStreamName")
    lines = []
    if stream:
        events = logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream)["events"]
        lines = [event["message"] for event in events]
    if job["status"] != "SUCCEEDED":
        sys.exit(
            f"the verification job {job_id} in {image} {job['status']}: "
            f"{job.get('statusReason', 'no reason given')}; its log ({LOG_GROUP}/{stream}): {lines}"
        )
    print(f"{' '.join(lines)}\t{time.monotonic() - started:.1f}")


def main(argv: list[str]) -> None:
    match argv:
        case ["provision"]:
            provision()
        case ["verify", image, marker_file]:
            verify(image, marker_file)
        case _:
            sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
