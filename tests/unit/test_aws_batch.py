"""The aws-batch backend's requests and parsing: pure builders, and the AWS calls
checked against botocore's Stubber (moto does not enforce DescribeJobs' 100-id limit)."""

import json

import pytest
from snakemake_interface_common.exceptions import WorkflowError

pytest.importorskip("snakemake_executor_plugin_aws_batch")
boto3 = pytest.importorskip("boto3")
from botocore.stub import Stubber  # noqa: E402

from snakemake_executor_hybrid.backends import aws_batch  # noqa: E402
from snakemake_executor_hybrid.backends import aws_batch_api as api  # noqa: E402
from snakemake_executor_hybrid.states import JobState  # noqa: E402


def client(service):
    return boto3.client(
        service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def test_status_of_250_jobs_takes_three_describe_calls_of_at_most_100_ids():
    batch = client("batch")
    ids = [f"job-{i}" for i in range(250)]
    with Stubber(batch) as stub:
        for start in (0, 100, 200):
            chunk = ids[start : start + 100]
            jobs = [
                {
                    "jobId": j,
                    "jobName": j,
                    "jobQueue": "q",
                    "status": "RUNNING",
                    "startedAt": 1,
                    "jobDefinition": "d",
                }
                for j in chunk
            ]
            stub.add_response("describe_jobs", {"jobs": jobs}, {"jobs": chunk})
        records = aws_batch.describe(batch, ids)
        stub.assert_no_pending_responses()
    assert len(records) == 250 and {r.state for r in records.values()} == {JobState.RUNNING}


def test_a_failure_record_carries_reason_exit_code_and_log_stream():
    response = {
        "jobs": [
            {
                "jobId": "a",
                "status": "FAILED",
                "statusReason": "Essential container exited",
                "container": {"exitCode": 3, "logStreamName": "def/default/a"},
            },
            {"jobId": "b", "status": "RUNNABLE"},
            {"jobId": "c", "status": "SOME_NEW_STATE"},
        ]
    }
    records = api.parse_jobs(response)
    assert records["a"].state is JobState.FAILED and records["a"].exit_code == 3
    assert records["a"].log_stream == "def/default/a"
    assert records["b"].state is JobState.QUEUED
    assert records["c"].state is JobState.RUNNING  # unknown: still in progress
    message = api.failure_message(records["a"], ["Traceback ...", "ValueError: bad lr"], "LOG")
    assert "ended FAILED (exit code 3; reason: Essential container exited)" in message
    assert "    ValueError: bad lr" in message and "Log: LOG" in message


def test_log_tail_reads_the_last_lines_and_survives_a_missing_stream():
    logs = client("logs")
    with Stubber(logs) as stub:
        stub.add_response(
            "get_log_events",
            {"events": [{"timestamp": 1, "message": "line 1\n"}, {"timestamp": 2, "message": "x"}]},
            {
                "logGroupName": api.LOG_GROUP,
                "logStreamName": "s",
                "limit": 20,
                "startFromHead": False,
            },
        )
        stub.add_client_error("get_log_events", "ResourceNotFoundException")
        assert aws_batch.log_tail(logs, "s") == ["line 1", "x"]
        assert aws_batch.log_tail(logs, "gone") == []


@pytest.mark.parametrize(
    ("threads", "mem_mb", "runtime", "expected"),
    [
        (3, 5000, None, api.Request(3, 5000, 0, None)),  # no table: 3 vCPUs, 5000 MiB as asked
        (1, 5000, 10, api.Request(1, 5000, 0, 600)),  # runtime in minutes -> the time limit
        (2, 0.5, 0.2, api.Request(2, 4, 0, 60)),  # Batch's minimums
        (None, None, None, api.Request(1, 1024, 0, None)),  # no hidden 300 s cap
    ],
)
def test_the_request_follows_the_rule(threads, mem_mb, runtime, expected):
    assert api.request_of(threads, mem_mb, None, runtime) == expected


def test_a_job_definition_holds_no_value_no_privilege_and_secrets_as_references():
    definition = api.job_definition(
        "img:1",
        api.Request(2, 2048, 1, 600),
        "arn:role/job",
        "arn:role/exec",
        {"HF_TOKEN": "arn:aws:secretsmanager:us-east-1:1:secret:hf"},
    )
    container = definition["containerProperties"]
    assert "environment" not in container and container["privileged"] is False
    assert container["secrets"] == [
        {"name": "HF_TOKEN", "valueFrom": "arn:aws:secretsmanager:us-east-1:1:secret:hf"}
    ]
    assert {"type": "GPU", "value": "1"} in container["resourceRequirements"]
    assert definition["timeout"] == {"attemptDurationSeconds": 600}
    same = api.job_definition(
        "img:1",
        api.Request(2, 2048, 1, 600),
        "arn:role/job",
        "arn:role/exec",
        {"HF_TOKEN": "arn:aws:secretsmanager:us-east-1:1:secret:hf"},
    )
    assert api.definition_name(definition) == api.definition_name(same)  # registered once
    other = api.job_definition("img:2", api.Request(2, 2048), None, None, {})
    assert api.definition_name(other) != api.definition_name(definition)


def test_submission_carries_the_command_and_plain_environment_only():
    arguments = api.submit_arguments(
        "snakejob-a-1", "q", "def:3", "python -m snakemake ...", {"AWS_REGION": "x"}, {"t": "1"}
    )
    assert arguments["containerOverrides"]["command"] == [
        "/bin/sh",
        "-c",
        "python -m snakemake ...",
    ]
    assert json.dumps(arguments).count("AWS_REGION") == 1


def test_job_names_are_what_batch_accepts():
    name = api.job_name("train.big model/ü", 17)
    assert name.startswith("snakejob-train-big-model--") and name.endswith("-17")
    assert all(c.isascii() and (c.isalnum() or c in "-_") for c in name)
    assert len(api.job_name("x" * 300, 1)) == 128


def test_secret_settings_name_the_flag_and_the_form():
    assert api.parse_secrets("A=arn:1, B=arn:2") == {"A": "arn:1", "B": "arn:2"}
    with pytest.raises(WorkflowError, match="'A' is not NAME=ARN"):
        api.parse_secrets("A")
    assert api.secret_like(["AWS_SECRET_ACCESS_KEY", "HF_TOKEN", "AWS_REGION"]) == [
        "AWS_SECRET_ACCESS_KEY",
        "HF_TOKEN",
    ]
