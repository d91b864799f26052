"""The backend contract's mixins: reports pass the host, spawned jobs get its arguments."""

from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo

from snakemake_executor_hybrid.backends.base import (
    Outcome,
    ReportsToHost,
    SpawnsWithHostArgs,
    attach,
)
from snakemake_executor_hybrid.states import JobState


class Host:
    def __init__(self, take: bool = False) -> None:
        self.take, self.calls = take, []

    def spawn_args(self, job, containers=True):
        return f"--set-resources for-{job}-{containers}"

    def job_submitted(self, backend, job_info):
        self.calls.append(("submitted", backend, job_info.external_jobid))

    def job_ended(self, backend, job_info, outcome, msg=None):
        self.calls.append(("ended", backend, outcome))
        return self.take


class Plugin:
    """Stands for the Snakemake executor a backend is built on."""

    def __init__(self) -> None:
        self.reported = []

    def format_job_exec(self, job):
        return f"python -m snakemake {self.additional_general_args()}"

    def additional_general_args(self):
        return []  # the interface's default

    def report_job_submission(self, job_info, register_job=True):
        self.reported.append(("submission", job_info.external_jobid))

    def report_job_success(self, job_info):
        self.reported.append(("success",))

    def report_job_error(self, job_info, msg=None, **kwargs):
        self.reported.append(("error", msg))


class Backend(ReportsToHost, SpawnsWithHostArgs, Plugin):
    name = "here"

    def __init__(self, host) -> None:
        super().__init__()
        self._host = host


class CloudLike(Backend):
    spawn_containers = False


def test_the_spawned_snakemake_gets_the_hosts_arguments_for_its_job():
    assert Backend(Host()).format_job_exec("j1") == (
        "python -m snakemake --set-resources for-j1-True"
    )
    assert CloudLike(Host()).format_job_exec("j2").endswith("for-j2-False")


def test_reports_reach_snakemake_after_the_host_with_their_outcome():
    host = Host()
    backend = Backend(host)
    backend.report_job_submission(SubmittedJobInfo("job", external_jobid="42"))
    backend.report_job_success(SubmittedJobInfo("job"))
    backend.report_job_error(SubmittedJobInfo("job"), msg="exit 1\nmore")
    killed = Outcome(JobState.OUT_OF_MEMORY, "killed", message="killed for memory")
    backend.report_job_error(attach(SubmittedJobInfo("job"), killed), msg="raw")
    assert host.calls == [
        ("submitted", "here", "42"),
        ("ended", "here", Outcome(JobState.SUCCEEDED)),
        ("ended", "here", Outcome(JobState.FAILED, "exit 1")),
        ("ended", "here", killed),
    ]
    assert backend.reported == [
        ("submission", "42"),
        ("success",),
        ("error", "exit 1\nmore"),
        ("error", "killed for memory"),  # the outcome's message replaces the raw one
    ]


def test_a_job_the_host_takes_elsewhere_is_not_reported():
    backend = Backend(Host(take=True))
    backend.report_job_error(SubmittedJobInfo("job"), msg="cannot start")
    backend.report_job_success(SubmittedJobInfo("job"))
    assert backend.reported == []
