"""The ``aws-batch`` backend: snakemake-executor-plugin-aws-batch, made fit for a
mixed run and with its defects fixed.

Reused: the plugin's settings (every ``--aws-batch-*`` flag and profile key) and
its place in Snakemake (a remote executor with a status loop). Replaced here:

* the job's command line comes from a view of the workflow with no shared file
  system (``cloud.CloudWorkflowView``); sources are uploaded once;
* the image is the rule's ``container:`` (else ``--container-image``), and the
  request follows the rule: threads as vCPUs, ``mem_mb``, ``gpu``, ``runtime`` as
  the time limit (no memory table, no 300 s default limit, no privileged mode);
* one job definition per image and request, registered once and holding no
  environment value; secrets go as references (``--hybrid-aws-batch-secrets``);
* status: one ``DescribeJobs`` call per 100 active jobs every
  ``--hybrid-cloud-status-interval`` seconds, off the event loop; a failure
  carries Batch's reason and the tail of the job's CloudWatch log; an endpoint
  that does not answer for ``--hybrid-cloud-unreachable-after`` seconds fails the
  jobs with a message naming it; every call has bounded timeouts and retries;
* cancel terminates every job of the run that is still queued or running.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from snakemake_executor_plugin_aws_batch import Executor as BatchPluginExecutor
from snakemake_executor_plugin_aws_batch import common_settings as batch_common_settings
from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo

from .. import compat
from ..states import JobState
from . import aws_batch_api as api
from . import cloud
from .base import Host, Outcome, ReportsToHost, SpawnsWithHostArgs

CONNECT_TIMEOUT = 5  # seconds, per attempt of an AWS call
READ_TIMEOUT = 30
ATTEMPTS = 3  # botocore "standard" retries, first attempt included
LOG_LINES = 20


def _client(service: str, region: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"max_attempts": ATTEMPTS, "mode": "standard"},
    )
    return boto3.client(service, region_name=region, config=config)


def _aws_errors() -> tuple[type[Exception], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def describe(client: Any, job_ids: list[str]) -> dict[str, api.BatchRecord]:
    """The records of ``job_ids``: one DescribeJobs call per 100 ids."""
    records: dict[str, api.BatchRecord] = {}
    for chunk in api.describe_chunks(job_ids):
        records.update(api.parse_jobs(client.describe_jobs(jobs=chunk)))
    return records


def log_tail(client: Any, stream: str, lines: int = LOG_LINES) -> list[str]:
    """The last ``lines`` lines a job wrote to its CloudWatch log stream ([] if none)."""
    try:
        events = client.get_log_events(
            logGroupName=api.LOG_GROUP, logStreamName=stream, limit=lines, startFromHead=False
        ).get("events", [])
    except _aws_errors():
        return []
    return [event["message"].rstrip() for event in events]


def check_settings(settings: Any) -> None:
    """The plugin's required settings, named by their flags (Snakemake checks them
    only for the selected executor)."""
    missing = [
        f"--aws-batch-{name.replace('_', '-')}"
        for name in ("region", "job_queue", "job_role")
        if not getattr(settings, name, None)
    ]
    if missing:
        raise WorkflowError(
            f"Rules are routed to the aws-batch backend, but {', '.join(missing)} "
            "is not set: give the flag(s) or the profile key(s) (aws-batch-region, ...), "
            "or the SNAKEMAKE_AWS_BATCH_JOB_QUEUE / ..._JOB_ROLE variables."
        )


class AwsBatchBackend(ReportsToHost, SpawnsWithHostArgs, BatchPluginExecutor):
    name = "aws-batch"
    spawn_containers = False  # the job runs in the rule's image: no launcher of ours

    def __init__(self, host: Host) -> None:
        settings = host.plugin_settings(self.name)
        check_settings(settings)
        cloud.require_default_storage(host.workflow, self.name)
        self._host = host
        self._common = cloud.common_settings(batch_common_settings)
        self._secrets = api.parse_secrets(host.settings.aws_batch_secrets)
        self._sources = cloud.SourcesOnce(host.workflow)
        self._definitions: dict[str, str] = {}  # definition name -> "name:revision"
        self._run = uuid.uuid4().hex[:12]
        self._down_since: float | None = None
        self._warned_env = False
        # clients before super().__init__(): it starts the status thread
        self.batch = _client("batch", settings.region)
        self.logs = _client("logs", settings.region)
        self.endpoint = self.batch.meta.endpoint_url
        self._check_queue(settings)
        super().__init__(cloud.CloudWorkflowView(host.workflow, settings), host.logger)

    def __post_init__(self) -> None:  # the plugin's would fix the interval at 5 s
        self.settings = self.workflow.executor_settings
        self.container_image = self.workflow.remote_execution_settings.container_image
        self.next_seconds_between_status_checks = self._host.settings.cloud_status_interval

    @property
    def common_settings(self) -> Any:
        return self._common

    def _check_queue(self, settings: Any) -> None:
        try:
            queues = self.batch.describe_job_queues(jobQueues=[settings.job_queue])
        except _aws_errors() as e:
            raise WorkflowError(
                f"AWS Batch at {self.endpoint} (region {settings.region}) cannot be "
                f"reached: {e}. Check the region, AWS_ENDPOINT_URL and the credentials."
            ) from e
        if not queues.get("jobQueues"):
            raise WorkflowError(
                f"AWS Batch job queue {settings.job_queue!r} does not exist in region "
                f"{settings.region} ({self.endpoint}): set --aws-batch-job-queue to the "
                "name or ARN of an existing queue."
            )

    # -- submission ------------------------------------------------------------------

    def run_job(self, job: Any) -> None:
        refused: tuple[type[Exception], ...] = (*_aws_errors(), WorkflowError)
        try:
            self._sources.ensure()
            definition = self._definition(job)
            arguments = api.submit_arguments(
                api.job_name(job.name, job.jobid),
                self.settings.job_queue,
                definition,
                self.format_job_exec(job),
                self._environment(),
                {**(self.settings.tags or {}), "snakemake-hybrid-run": self._run},
            )
            submitted = self.batch.submit_job(**arguments)
        except refused as e:
            self.report_job_error(SubmittedJobInfo(job), msg=f"AWS Batch refused the job: {e}")
            return
        name = definition.partition(":")[0]
        self.logger.info(f"hybrid: job {job.jobid} is AWS Batch job {submitted['jobId']}")
        self.report_job_submission(
            SubmittedJobInfo(job, external_jobid=submitted["jobId"], aux={"definition": name})
        )

    def _image(self, job: Any) -> str:
        rules = [j.rule for j in job.jobs] if job.is_group() else [job.rule]
        images = {str(compat.rule_container(r) or self.container_image) for r in rules}
        if len(images) > 1:
            raise WorkflowError(
                f"Group job {job.name} mixes container images ({', '.join(sorted(images))}); "
                "a cloud job runs in one image."
            )
        image = images.pop()
        return image.removeprefix("docker://")

    def _definition(self, job: Any) -> str:
        request = api.request_of(
            job.resources.get("_cores", job.threads),
            job.resources.get("mem_mb"),
            job.resources.get("gpu"),
            job.resources.get("runtime"),
        )
        definition = api.job_definition(
            self._image(job),
            request,
            self.settings.job_role,
            self._host.settings.aws_batch_execution_role,
            self._secrets,
        )
        name = api.definition_name(definition)
        if name not in self._definitions:
            found = self.batch.describe_job_definitions(jobDefinitionName=name, status="ACTIVE")
            revisions = [d["revision"] for d in found.get("jobDefinitions", [])]
            if not revisions:
                revisions = [
                    self.batch.register_job_definition(jobDefinitionName=name, **definition)[
                        "revision"
                    ]
                ]
            self._definitions[name] = f"{name}:{max(revisions)}"
        return self._definitions[name]

    def _environment(self) -> dict[str, str]:
        """--envvars and storage settings: passed with each submission, never stored in
        a job definition."""
        environment = dict(self.envvars())
        suspicious = api.secret_like(sorted(environment))
        if suspicious and not self._warned_env:
            self._warned_env = True
            self.logger.warning(
                f"hybrid: {', '.join(suspicious)} look like credentials; they reach AWS "
                "Batch jobs as plain values of each submission. On AWS, give jobs their "
                "credentials through the job role, and other secrets as references with "
                "--hybrid-aws-batch-secrets NAME=ARN (docs/cloud.md)."
            )
        return environment

    # -- status ----------------------------------------------------------------------

    async def check_active_jobs(
        self, active_jobs: list[SubmittedJobInfo]
    ) -> AsyncGenerator[SubmittedJobInfo, None]:
        if not active_jobs:
            return
        try:
            async with self.status_rate_limiter:
                records = await asyncio.to_thread(
                    describe, self.batch, [j.external_jobid for j in active_jobs]
                )
        except _aws_errors() as e:
            for job_info in self._unanswered(active_jobs, e):
                yield job_info
            return
        self._down_since = None
        for job_info in active_jobs:
            record = records.get(job_info.external_jobid)
            if record is None or not record.state.final:
                yield job_info
            elif record.state.ok:
                # a protected output gets a local copy, which Snakemake write-protects
                for f in compat.protected_storage_outputs(job_info.job):
                    await compat.retrieve_from_storage(f)
                self._host.outputs_stored(job_info.job)
                self.report_job_success(job_info)
            else:
                tail, where = await asyncio.to_thread(self._log_tail, job_info, record)
                self.report_job_error(job_info, msg=api.failure_message(record, tail, where))

    def _unanswered(self, active_jobs: list[SubmittedJobInfo], error: Exception) -> list:
        """Jobs still to wait for while the endpoint does not answer; none once it has
        not answered for --hybrid-cloud-unreachable-after seconds (they fail)."""
        now = time.monotonic()
        self._down_since = self._down_since or now
        limit = self._host.settings.cloud_unreachable_after
        if now - self._down_since < limit:
            self.logger.warning(f"hybrid: AWS Batch at {self.endpoint} did not answer: {error}")
            return active_jobs
        for job_info in active_jobs:
            self.report_job_error(
                job_info,
                msg=f"AWS Batch at {self.endpoint} has not answered for {limit:.0f} s "
                f"(last error: {error}); the state of job {job_info.external_jobid} is "
                "unknown. Check the endpoint and the network, then rerun.",
            )
        return []

    def _log_tail(self, job_info: SubmittedJobInfo, record: api.BatchRecord) -> tuple[list, str]:
        stream = record.log_stream or api.log_stream_name(
            job_info.aux.get("definition", ""), record.job_id
        )
        for attempt in range(3):  # the log may land a moment after the state
            lines = log_tail(self.logs, stream)
            if lines or attempt == 2:
                break
            time.sleep(1)
        return lines, f"CloudWatch Logs {api.LOG_GROUP} {stream}"

    def outcome(self, job_info: SubmittedJobInfo, state: JobState, msg: Any) -> Outcome:
        """A job Batch refused, or whose endpoint stopped answering, did not fail by
        itself: it may fail over (``slurm/aws-batch``, ``aws-batch/local``)."""
        found = super().outcome(job_info, state, msg)
        if str(msg or "").startswith(("AWS Batch refused the job", "AWS Batch at ")):
            return Outcome(found.state, found.reason, found.usage, infrastructure=True)
        return found

    async def sleep(self) -> None:
        deadline = time.monotonic() + self.next_seconds_between_status_checks
        while self.wait and time.monotonic() < deadline:
            await asyncio.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    # -- cancellation ----------------------------------------------------------------

    def cancel_jobs(self, active_jobs: list[SubmittedJobInfo]) -> None:
        ids = [j.external_jobid for j in active_jobs if j.external_jobid]
        if not ids:
            return
        self.logger.info(f"hybrid: terminating {len(ids)} AWS Batch job(s)")

        def terminate(job_id: str) -> None:
            try:
                self.batch.terminate_job(jobId=job_id, reason="cancelled by Snakemake")
            except _aws_errors() as e:
                self.logger.warning(f"hybrid: could not terminate AWS Batch job {job_id}: {e}")

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(terminate, ids))


def create(host: Host) -> AwsBatchBackend:
    return AwsBatchBackend(host)
