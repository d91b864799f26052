"""Executor settings (``--hybrid-*`` flags, ``hybrid-*`` profile keys)."""

from collections.abc import Mapping
from dataclasses import InitVar, dataclass, field
from typing import Any, Optional

from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.settings import (
    CommonSettings,
    ExecutorSettingsBase,
)

from snakemake_human_gate.fsutil import SHARE_MODES

from . import compat, routing
from .backends import BACKENDS
from .backends.aws_batch_api import parse_secrets
from .backends.bundle_plan import MIN_HISTORY_RUNS, parse_patterns
from .containers.runtimes import parse_runtimes, split_args, split_names


def setting(default: Any, help: str, **extra: Any) -> Any:
    """An executor setting: a flag and profile key, not read from the environment."""
    return field(
        default=default, metadata={"help": help, "env_var": False, "required": False, **extra}
    )


@dataclass
class ExecutorSettings(ExecutorSettingsBase):
    default_backend: str = setting(
        "local",
        "Backend for rules that name none (resource 'executor') and "
        f"match no route. One of: {', '.join(sorted(BACKENDS))}, or a failover chain "
        "such as 'slurm/local' (docs/adaptive.md).",
    )
    routes: Optional[str] = setting(  # noqa: UP045 (argparse needs typing.Optional)
        None,
        "Route rules by name without editing the Snakefile: a "
        "comma-separated list of PATTERN=BACKEND, PATTERN being a rule name or "
        "a shell-style glob (e.g. --hybrid-routes 'train_*=slurm,plot=local'). "
        "The first matching route wins; a rule's own 'executor' resource (or "
        "--set-resources RULE:executor=...) takes precedence.",
    )
    local_cores: Optional[int] = setting(  # noqa: UP045
        None,
        "Core budget of the local backend: jobs routed 'local' run "
        "concurrently as long as their threads fit in it. Default: Snakemake's "
        "--local-cores, else the number of CPUs of this machine.",
        type=int,
    )
    slurm_status_interval: float = setting(
        2.0,
        "Seconds between two status queries (one batched 'sacct' call "
        "for all active SLURM jobs of the run). A finished job is noticed "
        "within about this time.",
    )
    bundle: Optional[str] = setting(  # noqa: UP045
        None,
        "Run ready SLURM jobs of these rules (comma-separated names or shell-style "
        "globs) several to a SLURM job: jobs of one rule with the same resources and "
        "attempt share one allocation and one inner Snakemake, which runs them in "
        "parallel; each is still reported on its own (docs/bundling.md).",
    )
    bundle_target: float = setting(
        300.0,
        "Seconds a bundle should last: its size is this over the median runtime of "
        "the rule's past runs (run journal), times the members running at once.",
    )
    bundle_max: int = setting(
        100,
        "Most jobs in one bundle (also the size of bundles of rules without history).",
        type=int,
    )
    bundle_fill: float = setting(
        2.0,
        "Seconds a ready job may wait for others of its kind before its bundle is "
        "submitted (a full bundle goes at once).",
    )
    bundle_short: float = setting(
        30.0,
        "Rules whose SLURM jobs took at most this many seconds (median of at least "
        f"{MIN_HISTORY_RUNS} successful runs in the run journal) are bundled without "
        "being named in --hybrid-bundle; 0 turns this off.",
    )
    cloud_status_interval: float = setting(
        2.0,
        "Seconds between two status queries of a cloud backend (one batched call "
        "for all active jobs of the run, e.g. DescribeJobs with up to 100 ids).",
    )
    cloud_unreachable_after: float = setting(
        60.0,
        "Seconds a cloud service may fail to answer status queries before its "
        "active jobs are failed with a message naming the endpoint.",
    )
    aws_batch_secrets: Optional[str] = setting(  # noqa: UP045
        None,
        "Secrets of AWS Batch jobs, as references: comma-separated NAME=ARN items "
        "(Secrets Manager or SSM Parameter Store ARNs); the job definition holds the "
        "reference, AWS Batch puts the value into the job's environment variable NAME.",
    )
    aws_batch_execution_role: Optional[str] = setting(  # noqa: UP045
        None,
        "ARN of the execution role AWS Batch uses to read --hybrid-aws-batch-secrets "
        "(and to pull private images). The job's own credentials come from "
        "--aws-batch-job-role.",
    )
    container_runtime: Optional[str] = setting(  # noqa: UP045
        None,
        "Runtime for rules with a container: image, per backend: one runtime "
        "for all (e.g. 'podman') or BACKEND=RUNTIME items (e.g. "
        "'local=podman,slurm=apptainer'); runtimes: podman, docker, apptainer, "
        "singularity. A rule's 'container_runtime' resource takes precedence. "
        "Default: the first of these found on PATH (local: podman first; slurm: "
        "apptainer first). Ignored under --software-deployment-method apptainer.",
    )
    container_args: Optional[str] = setting(  # noqa: UP045
        None,
        "Extra arguments for every container run, placed before the image "
        "(e.g. '--device nvidia.com/gpu=all' for podman, '--nv' for apptainer). A "
        "rule's 'container_args' resource adds to them.",
    )
    container_env: Optional[str] = setting(  # noqa: UP045
        None,
        "Comma-separated names of environment variables passed into "
        "containers, besides thread counts, TMPDIR and CUDA_VISIBLE_DEVICES "
        "(e.g. 'WANDB_API_KEY,HF_HOME').",
    )
    history: Optional[str] = setting(  # noqa: UP045
        None,
        "The run journal (an SQLite file): every job's requests, what it used and how "
        "it ended, read by learned() resources and by 'snakemake-hybrid'. Default: "
        ".snakemake/hybrid/history.sqlite in the working directory.",
    )
    gate_dir: Optional[str] = setting(  # noqa: UP045
        None,
        "Store of human-gate decisions (shared with 'snakemake-gate --dir'). "
        "Default: $SNAKEMAKE_GATE_DIR, else .snakemake/gates in the working directory.",
    )
    gate_share: str = setting(
        "private",
        "Permissions of a new gate store: private (owner only), group-read, "
        "or group-write (a team deciding with snakemake-gate as themselves).",
    )
    gate_poll_interval: float = setting(
        0.2,
        "Seconds between two looks at the pending gates of this run.",
    )
    gate_notify: Optional[str] = setting(  # noqa: UP045
        None,
        "Notification targets of every gate, comma-separated, added to "
        "$SNAKEMAKE_GATE_NOTIFY and each gate's notify=[...]: webhook:URL, slack:URL, "
        "mattermost:URL, email:ADDRESS; a URL may be $NAME (read from the environment); "
        "'TARGET as USER' adds one-click links acting as USER (docs/notifications.md).",
    )
    gate_url: Optional[str] = setting(  # noqa: UP045
        None,
        "Public address of 'snakemake-gate serve', for links in notifications. "
        "Default: $SNAKEMAKE_GATE_URL.",
    )
    exit_when_waiting: bool = setting(
        False,
        "Stop (exit status 75, with a summary of who must decide what) as soon as "
        "every remaining job waits on a human, instead of waiting for the decisions. "
        "Rerun Snakemake later: decided gates are not asked again.",
    )

    # Python API only (no flag): the settings objects of the Snakemake executor
    # plugins the backends reuse, by backend name, e.g.
    # ExecutorSettings(backend_settings={"slurm": slurm_plugin.ExecutorSettings(...)}).
    # On the command line those plugins' own flags (--slurm-*) are read instead.
    backend_settings: InitVar[Optional[Mapping[str, Any]]] = None  # noqa: UP045

    def __post_init__(self, backend_settings: Mapping[str, Any] | None = None) -> None:
        """Refuse bad values when Snakemake reads the flags, naming the flag."""
        self.plugin_settings = dict(backend_settings or {})
        for name, value in self.plugin_settings.items():
            _check_plugin_settings(name, value)

        routing.parse_chain(
            self.default_backend, "--hybrid-default-backend (profile key 'hybrid-default-backend')"
        )
        routing.parse_routes(self.routes)
        if self.local_cores is not None and self.local_cores < 1:
            raise WorkflowError(f"--hybrid-local-cores must be at least 1, got {self.local_cores}.")
        for flag, value in (
            ("--hybrid-slurm-status-interval", self.slurm_status_interval),
            ("--hybrid-cloud-status-interval", self.cloud_status_interval),
            ("--hybrid-cloud-unreachable-after", self.cloud_unreachable_after),
            ("--hybrid-gate-poll-interval", self.gate_poll_interval),
            ("--hybrid-bundle-target", self.bundle_target),
        ):
            if not value > 0:
                raise WorkflowError(f"{flag} must be a positive number of seconds, got {value}.")
        parse_patterns(self.bundle)
        if self.bundle_fill < 0:
            raise WorkflowError(
                f"--hybrid-bundle-fill must be 0 or a number of seconds, got {self.bundle_fill}."
            )
        if self.bundle_max < 1:
            raise WorkflowError(f"--hybrid-bundle-max must be at least 1, got {self.bundle_max}.")
        if self.bundle_short < 0:
            raise WorkflowError(
                f"--hybrid-bundle-short must be 0 (off) or a number of seconds, got "
                f"{self.bundle_short}."
            )
        parse_runtimes(self.container_runtime, tuple(BACKENDS))
        split_args(self.container_args, "--hybrid-container-args")
        split_names(self.container_env, "--hybrid-container-env")
        parse_secrets(self.aws_batch_secrets)
        if self.gate_share not in SHARE_MODES:
            raise WorkflowError(
                f"--hybrid-gate-share: unknown share mode {self.gate_share!r}: use one of "
                f"{', '.join(SHARE_MODES)}."
            )


def _check_plugin_settings(backend: str, value: Any) -> None:
    where = f"ExecutorSettings(backend_settings={{{backend!r}: ...}})"
    spec = BACKENDS.get(backend)
    if spec is None or spec.capabilities.plugin is None:
        takes = sorted(n for n, s in BACKENDS.items() if s.capabilities.plugin)
        raise WorkflowError(
            f"{where}: backend {backend!r} reuses no Snakemake executor plugin; "
            f"settings objects are taken for: {', '.join(takes)}."
        )
    if spec.missing() is None:
        cls = compat.plugin_settings_class(spec.capabilities.plugin)
        if cls is not None and not isinstance(value, cls):
            raise WorkflowError(
                f"{where}: expected a {cls.__module__}.{cls.__name__}, got {type(value).__name__}."
            )


def delegate_settings(settings: ExecutorSettings, backend: str, logger: Any) -> Any:
    """The settings of the executor plugin ``backend`` reuses.

    Snakemake builds settings only for the selected executor (``hybrid``); the
    flags and profile keys of the reused plugin (``--slurm-*``) are parsed but
    dropped. In order: an object given through the Python API
    (``backend_settings``), else those flags read again from the command line,
    else the plugin's defaults.
    """
    plugin = BACKENDS[backend].capabilities.plugin
    if plugin is None:
        return None
    if backend in settings.plugin_settings:
        return settings.plugin_settings[backend]
    args = compat.command_line_args()
    if args is not None:
        return compat.plugin_settings(plugin, args)
    logger.info(
        f"hybrid: no settings given for the {backend} backend (Python API): using the "
        f"defaults of the {plugin} executor plugin; pass them with "
        f"ExecutorSettings(backend_settings={{{backend!r}: ...}})."
    )
    return compat.plugin_settings_class(plugin)()


common_settings = CommonSettings(
    # Snakemake must hand every non-local rule to us; localrules stay with
    # Snakemake's own local executor.
    non_local_exec=True,
    implies_no_shared_fs=False,
    job_deploy_sources=False,
    pass_default_storage_provider_args=True,
    pass_default_resources_args=True,
    pass_envvar_declarations_to_cmd=False,
    auto_deploy_default_storage_provider=False,
    init_seconds_before_status_checks=0,
)
