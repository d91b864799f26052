"""AWS Batch requests and answers as pure builders and parsers (no I/O here).

One ``DescribeJobs`` call covers up to 100 jobs; one job definition serves every
job with the same image and request (it holds no per-job value and no secret).
"""

import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from snakemake_interface_common.exceptions import WorkflowError

from ..containers.runtimes import split_names
from ..states import JobState

DESCRIBE_CHUNK = 100  # DescribeJobs takes at most 100 job ids
LOG_GROUP = "/aws/batch/job"  # where Batch writes a job's output by default

# Batch job states -> our state model.
_STATE_MAP: dict[str, JobState] = {
    "SUBMITTED": JobState.QUEUED,
    "PENDING": JobState.QUEUED,
    "RUNNABLE": JobState.QUEUED,
    "STARTING": JobState.QUEUED,
    "RUNNING": JobState.RUNNING,
    "SUCCEEDED": JobState.SUCCEEDED,
    "FAILED": JobState.FAILED,
}

# Names of environment variables that must not travel as plain values.
_SECRET_WORDS = ("SECRET", "TOKEN", "PASSWORD", "PASSWD", "CREDENTIAL", "PRIVATE_KEY")


@dataclass(frozen=True)
class Request:
    """What a job asks of Batch (from its rule's threads, mem_mb, gpu, runtime)."""

    vcpus: int
    memory_mb: int
    gpus: int = 0
    timeout_seconds: int | None = None


@dataclass(frozen=True)
class BatchRecord:
    job_id: str
    native_state: str
    reason: str
    exit_code: int | None
    log_stream: str | None

    @property
    def state(self) -> JobState:
        # an unknown (newer) state is treated as still in progress
        return _STATE_MAP.get(self.native_state, JobState.RUNNING)


def request_of(threads: Any, mem_mb: Any, gpus: Any, runtime_minutes: Any) -> Request:
    """The request of a job: its threads as vCPUs, mem_mb as MiB (rounded up, at
    least 4, Batch's minimum), its runtime as the attempt's time limit (none without)."""
    memory = max(4, math.ceil(float(mem_mb))) if mem_mb not in (None, "") else 1024
    timeout = None
    if runtime_minutes not in (None, ""):
        timeout = max(60, int(math.ceil(float(runtime_minutes) * 60)))  # Batch's minimum
    return Request(
        vcpus=max(1, int(threads or 1)),
        memory_mb=memory,
        gpus=max(0, int(gpus or 0)),
        timeout_seconds=timeout,
    )


def job_definition(
    image: str,
    request: Request,
    job_role: str | None,
    execution_role: str | None,
    secrets: Mapping[str, str],
) -> dict[str, Any]:
    """RegisterJobDefinition arguments (without the name): no environment values, no
    privileged mode; secrets only as references (``valueFrom``)."""
    resources = [
        {"type": "VCPU", "value": str(request.vcpus)},
        {"type": "MEMORY", "value": str(request.memory_mb)},
    ]
    if request.gpus:
        resources.append({"type": "GPU", "value": str(request.gpus)})
    container: dict[str, Any] = {
        "image": image,
        "command": ["/bin/sh", "-c", "echo no command given >&2; exit 2"],
        "resourceRequirements": resources,
        "privileged": False,
    }
    if job_role:
        container["jobRoleArn"] = job_role
    if execution_role:
        container["executionRoleArn"] = execution_role
    if secrets:
        container["secrets"] = [{"name": n, "valueFrom": v} for n, v in sorted(secrets.items())]
    definition: dict[str, Any] = {
        "type": "container",
        "containerProperties": container,
        "platformCapabilities": ["EC2"],
    }
    if request.timeout_seconds:
        definition["timeout"] = {"attemptDurationSeconds": request.timeout_seconds}
    return definition


def definition_name(definition: Mapping[str, Any]) -> str:
    """A name that is the same for the same definition (so it is registered once)."""
    digest = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()
    return f"snakemake-hybrid-{digest[:20]}"


def job_name(rule: str, jobid: Any) -> str:
    """A Batch job name (letters, digits, '-' and '_', at most 128)."""
    safe = "".join(c if (c.isascii() and c.isalnum()) or c in "-_" else "-" for c in rule)
    return f"snakejob-{safe}-{jobid}"[:128]


def submit_arguments(
    name: str,
    queue: str,
    definition: str,
    command: str,
    environment: Mapping[str, str],
    tags: Mapping[str, str],
) -> dict[str, Any]:
    """SubmitJob arguments: the job's command and its non-secret environment."""
    overrides: dict[str, Any] = {"command": ["/bin/sh", "-c", command]}
    if environment:
        overrides["environment"] = [{"name": k, "value": v} for k, v in environment.items()]
    arguments: dict[str, Any] = {
        "jobName": name,
        "jobQueue": queue,
        "jobDefinition": definition,
        "containerOverrides": overrides,
    }
    if tags:
        arguments["tags"] = dict(tags)
    return arguments


def secret_like(names: Sequence[str]) -> list[str]:
    """Variable names that look like credentials."""
    return [n for n in names if any(word in n.upper() for word in _SECRET_WORDS)]


def describe_chunks(job_ids: Sequence[str]) -> Iterator[list[str]]:
    ids = list(dict.fromkeys(job_ids))
    for i in range(0, len(ids), DESCRIBE_CHUNK):
        yield ids[i : i + DESCRIBE_CHUNK]


def parse_jobs(response: Mapping[str, Any]) -> dict[str, BatchRecord]:
    """Records of a DescribeJobs response, by job id."""
    records = {}
    for job in response.get("jobs", []):
        container = job.get("container") or {}
        records[job["jobId"]] = BatchRecord(
            job_id=job["jobId"],
            native_state=job.get("status", ""),
            reason=job.get("statusReason") or container.get("reason") or "",
            exit_code=container.get("exitCode"),
            log_stream=container.get("logStreamName"),
        )
    return records


def log_stream_name(definition_name: str, job_id: str) -> str:
    """Where Batch writes a job's output when DescribeJobs does not say (the default)."""
    return f"{definition_name}/default/{job_id}"


def failure_message(record: BatchRecord, log_tail: Sequence[str], where: str) -> str:
    """The job error shown to the user: state, reason, exit status, last log lines."""
    details = [f"exit code {record.exit_code}"] if record.exit_code is not None else []
    details.append(f"reason: {record.reason or 'none given'}")
    message = (
        f"AWS Batch job {record.job_id} ended {record.native_state} "
        f"({'; '.join(details)}). Log: {where}"
    )
    if log_tail:
        lines = "\n".join(f"    {line}" for line in log_tail)
        message += f"\nLast lines of the job's log:\n{lines}"
    return message + "\n"


def parse_secrets(text: str | None) -> dict[str, str]:
    """``NAME=ARN,...`` (--hybrid-aws-batch-secrets) -> {NAME: ARN}."""
    secrets = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, value = (s.strip() for s in item.partition("="))
        if not sep or not value:
            raise WorkflowError(
                f"--hybrid-aws-batch-secrets: {item.strip()!r} is not NAME=ARN; give e.g. "
                "'HF_TOKEN=arn:aws:secretsmanager:REGION:ACCOUNT:secret:hf-token'."
            )
        split_names(name, "--hybrid-aws-batch-secrets")
        secrets[name] = value
    return secrets
