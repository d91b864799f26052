"""Every use of Snakemake that is not part of its plugin interfaces, in one place.

The executor-plugin interface (snakemake-interface-executor-plugins) covers
submitting jobs and reporting on them. Routing a job, running it on this machine
and applying containers also need a few of Snakemake's own objects: rules and
their resources, the DAG's planned jobs, the local executor, the shell, the
command line. They are reached only through the functions here, and
:func:`check` verifies at start-up that the installed Snakemake has them, so a
version that lacks one fails with a message naming the supported versions
instead of an AttributeError in the middle of a run.

Nothing here imports Snakemake at import time (Snakemake imports every plugin in
every job process). What the gates need of Snakemake's scheduler and DAG is in
:mod:`.compat_scheduler`.
"""

import contextlib
import functools
import importlib
import inspect
import io
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from snakemake_interface_common.exceptions import WorkflowError

SUPPORTED = "Snakemake 9.16.3 or newer 9.x"

# (module, attribute path) pairs this plugin relies on; checked once per run.
_REQUIRED = (
    ("snakemake.common.tbdstring", "TBDString"),
    ("snakemake.resources", "Resource"),
    ("snakemake.resources", "Resources"),
    ("snakemake.executors.local", "Executor"),
    ("snakemake.executors.local", "common_settings"),
    ("snakemake.shell", "shell._processes"),
    ("snakemake.rules", "Rule.expand_resources"),
    ("snakemake.settings.types", "DeploymentMethod.APPTAINER"),
    ("snakemake.cli", "parse_args"),
    ("snakemake.exceptions", "SpawnedJobError"),
)


def _resolve(module: str, path: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def check() -> None:
    """Raise a WorkflowError if the installed Snakemake lacks what this plugin uses."""
    missing = []
    for module, path in _REQUIRED:
        try:
            _resolve(module, path)
        except (ImportError, AttributeError):
            missing.append(f"{module}.{path}")
    expand = _resolve("snakemake.rules", "Rule.expand_resources")
    if "skip_evaluation" not in inspect.signature(expand).parameters:
        missing.append("snakemake.rules.Rule.expand_resources(skip_evaluation=...)")
    try:  # an instance attribute: ask an instance
        probe = _resolve("snakemake.resources", "Resource")("probe", lambda: 0)._evaluator
    except (ImportError, AttributeError, TypeError):
        probe = None
    if not callable(probe):
        missing.append("snakemake.resources.Resource._evaluator")
    if missing:
        from importlib.metadata import version

        raise WorkflowError(
            f"The hybrid executor supports {SUPPORTED}; the installed Snakemake "
            f"{version('snakemake')} lacks {', '.join(missing)}. Install a supported "
            "version, e.g. pip install 'snakemake>=9.16.3,<10'."
        )


# -- rules and their resources ----------------------------------------------------


def rules(workflow: Any) -> list[Any]:
    return list(workflow.rules)


def rule_name(rule: Any) -> str:
    return str(rule.name)


def is_localrule(workflow: Any, rule: Any) -> bool:
    """Rules Snakemake runs itself (``localrules``), never handed to an executor."""
    return bool(workflow.is_local(rule))


def rule_group(rule: Any) -> str | None:
    return rule.group


def rule_params(rule_or_job: Any) -> Any:
    return rule_or_job.params


def rule_container(rule: Any) -> Any:
    return rule.container_img


def rule_basedir(rule: Any) -> str:
    return str(rule.basedir)


def static_resource(rule: Any, name: str) -> tuple[bool, Any]:
    """``(known, value)`` of a rule's resource: known is False for a function of the job."""
    res = rule.resources.get(name)
    if res is None:
        return True, None
    if res.is_evaluable():
        return False, None
    return True, res.value


def resource_evaluators(rule: Any) -> dict[str, Any]:
    """The resource functions of a rule by resource name (after Snakemake's own
    normalisation: ``mem`` and ``mem_mib`` are stored as ``mem_mb``, wrapped)."""
    return {name: res._evaluator for name, res in rule.resources.items() if res.is_evaluable()}


def job_rule_name(job: Any) -> str:
    return str(job.rule.name)


def set_rule_resource(rule: Any, name: str, value: str | int) -> None:
    """Give every job of ``rule`` in this process the resource ``name=value``,
    as ``--set-resources`` does when Snakemake parses the rule."""
    from snakemake.resources import Resource

    rule.resources[name] = Resource(name, value, raw=repr(value))


def job_resource(job: Any, name: str) -> Any:
    """One resource of a (single) job, evaluating only that one.

    ``job.resources`` evaluates and caches every resource of the job; Snakemake
    does that just before the job runs, when its input exists. Routing may need
    the ``executor`` resource earlier (at start-up, for a check): evaluate it
    alone, without touching the job's cache. Returns a TBDString when it depends
    on input that is not there yet; raises what the resource function raised.
    """
    rule = job.rule
    others = set(rule.resources.keys()) - {name, "_cores"}
    resources = rule.expand_resources(
        job.wildcards_dict, job.input, job.attempt, skip_evaluation=others
    )
    return resources.get(name)


def to_be_determined() -> Any:
    """Snakemake's placeholder for a value that depends on input not there yet."""
    from snakemake.common.tbdstring import TBDString

    return TBDString()


def is_tbd(value: Any) -> bool:
    """Whether a resource value is still undetermined (it depends on missing input)."""
    from snakemake.common.tbdstring import TBDString

    return isinstance(value, TBDString)


def is_overwritten(workflow: Any, rule: str, name: str) -> bool:
    """Whether ``--set-resources RULE:NAME=...`` (or the API's equivalent) was given."""
    return name in (workflow.resource_settings.overwrite_resources or {}).get(rule, {})


def local_cores(workflow: Any) -> int | None:
    """``--local-cores``, if given."""
    return workflow.resource_settings.local_cores


def overwrite_resource_items(workflow: Any) -> list[str]:
    """The user's ``--set-resources`` items (``RULE:NAME=RAW``), as Snakemake passes
    them on to the jobs it spawns."""
    parsed = workflow.resource_settings._parsed_overwrite_resources
    return [
        f"{rule}:{name}={value.raw}" for rule, res in parsed.items() for name, value in res.items()
    ]


def set_resources_arg(workflow: Any, extra: Mapping[str, Mapping[str, str | int]]) -> str:
    """One ``--set-resources`` argument: the user's items and ``extra`` (which win).

    A spawned Snakemake keeps only the last ``--set-resources`` of its command
    line, so the user's items are repeated with ours.
    """
    from snakemake_interface_executor_plugins.utils import format_cli_arg

    ours = {f"{rule}:{name}" for rule, res in extra.items() for name in res}
    items = [i for i in overwrite_resource_items(workflow) if i.split("=", 1)[0] not in ours]
    items += [
        f"{rule}:{name}={value!r}" for rule, res in extra.items() for name, value in res.items()
    ]
    return format_cli_arg("--set-resources", items, base64_encode=True) if items else ""


# -- the DAG, the scheduler, persistence --------------------------------------------


def needrun_jobs(workflow: Any) -> Iterable[Any]:
    return workflow.dag.needrun_jobs()


def is_pipe_group(job: Any) -> bool:
    """A group job formed for pipe() or service() outputs (its members run at once)."""
    from snakemake.io import is_flagged

    return any(
        is_flagged(f, "pipe") or is_flagged(f, "service") for m in job.jobs for f in m.output
    )


def job_wildcards(job: Any) -> dict[str, str]:
    return dict(job.wildcards_dict)


def job_error_info(job: Any, msg: Any, **kwargs: Any) -> dict[str, Any]:
    return dict(job.get_log_error_info(msg, **kwargs))


def log_error(message: str, info: Mapping[str, Any]) -> None:
    from snakemake.logging import logger

    logger.error(message, extra=dict(info))


# -- storage and jobs without a shared file system --------------------------------


def spawned_job_args_factory(workflow_view: Any) -> Any:
    """Snakemake's builder of a spawned job's arguments, over ``workflow_view`` (its
    storage, deployment and remote-execution settings rather than the run's)."""
    from snakemake.spawn_jobs import SpawnedJobArgsFactory

    return SpawnedJobArgsFactory(workflow_view)


def default_storage_provider(workflow: Any) -> str | None:
    return workflow.storage_settings.default_storage_provider


def upload_sources(workflow: Any) -> None:
    """Upload the workflow's sources to the default storage (for jobs that deploy them)."""
    if getattr(workflow, "_source_archive", None) is None:
        workflow.upload_sources()


def storage_outputs(job: Any) -> list[Any]:
    """A job's (a group job's members') output, benchmark and log files in storage."""
    files = []
    for member in job.jobs if job.is_group() else [job]:
        files += [*member.output, *([member.benchmark] if member.benchmark else []), *member.log]
    return [f for f in files if f.is_storage]


def protected_storage_outputs(job: Any) -> list[Any]:
    """Storage outputs marked protected(): Snakemake write-protects their local copy."""
    members = job.jobs if job.is_group() else [job]
    return [f for m in members for f in m.output if f.is_storage and f in m.protected_output]


async def retrieve_from_storage(f: Any) -> None:
    await f.retrieve_from_storage()


def check_in_storage(files: Iterable[Any], in_storage: bool) -> None:
    """Make Snakemake's main process treat ``files`` as kept in storage only (True):
    checked there, not expected locally, not uploaded again; False undoes it, so that
    a job reading one later retrieves it as usual."""
    for f in files:
        f.storage_object.retrieve = not in_storage


# -- deployment, shell, local execution ---------------------------------------------


def uses_apptainer(workflow: Any) -> bool:
    """Whether Snakemake itself runs ``container:`` rules (``--sdm apptainer``)."""
    from snakemake.settings.types import DeploymentMethod

    return DeploymentMethod.APPTAINER in workflow.deployment_settings.deployment_method


def shell_executable() -> str:
    from snakemake.shell import shell

    return shell.get_executable() or "sh"


def shell_process(jobid: Any) -> Any:
    """The process of an in-process job's running shell command, if any."""
    from snakemake.shell import shell

    return getattr(shell, "_processes", {}).get(jobid)


def local_executor_class() -> type:
    from snakemake.executors.local import Executor

    return Executor


def local_common_settings() -> Any:
    from snakemake.executors.local import common_settings

    return common_settings


def spawned_job_error() -> Exception:
    """What Snakemake's local executor raises for a failed spawned job (it reports
    the failure without a traceback: the job's own process printed it)."""
    from snakemake.exceptions import SpawnedJobError

    return SpawnedJobError()


def snakemake_site() -> str:
    """The directory Snakemake is installed in (its parent), for script: preambles."""
    import snakemake

    return os.path.dirname(os.path.dirname(snakemake.__file__ or "/usr/"))


def repair_script_preamble(script: Any, shell_exec: str, shell: str) -> None:
    """Snakemake writes a ``shell_exec`` resource unquoted into the preamble of a
    Python ``script:`` (``shell.executable(/path);``, a syntax error; seen up to
    9.27.1). Make that one statement valid, naming the shell to use inside the
    container; a Snakemake that quotes it leaves nothing to do."""
    text = script.read_text()
    broken = f"shell.executable({shell_exec});"
    if broken in text:
        script.write_text(text.replace(broken, f"shell.executable({shell!r});", 1))


# -- the command line ---------------------------------------------------------------


def running_cli() -> bool:
    """Whether this process is Snakemake's command line (not its Python API)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return os.path.basename(sys.argv[0]) == "snakemake" or (
        spec is not None and spec.name.startswith("snakemake")
    )


@functools.cache
def command_line_args() -> Any:
    """Snakemake's parsed command line (flags and profile keys), or None under the API
    or when it cannot be parsed again."""
    if not running_cli():
        return None
    from snakemake.cli import parse_args

    try:
        with contextlib.redirect_stderr(io.StringIO()):
            _, args = parse_args(sys.argv[1:])
    except SystemExit:
        return None
    return args


def forced_threads() -> bool:
    """``--force-use-threads``: run every local job in-process.

    Snakemake sets its own use_threads for every remote executor, so the user's
    flag is read from the command line (under the API: not forced)."""
    args = command_line_args()
    return bool(getattr(args, "force_use_threads", False))


def plugin_settings(plugin: str, args: Any) -> Any:
    """The settings object of executor plugin ``plugin`` from parsed ``args``."""
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    return ExecutorPluginRegistry().get_plugin(plugin).get_settings(args)


def plugin_settings_class(plugin: str) -> Any:
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    return ExecutorPluginRegistry().get_plugin(plugin).settings_cls


# -- the inner process of a bundle (backends/bundle_run.py) ---------------------------


@dataclass(frozen=True)
class JobLogEvents:
    """The ``event`` values of Snakemake's log records about a job."""

    info: Any  # a job starts (its rule, wildcards, jobid)
    finished: Any  # it succeeded (outputs checked)
    error: Any  # it failed


def job_log_events() -> JobLogEvents:
    from snakemake_interface_logger_plugins.common import LogEvent

    return JobLogEvents(LogEvent.JOB_INFO, LogEvent.JOB_FINISHED, LogEvent.JOB_ERROR)


def snakemake_logger() -> Any:
    """The logger every record of Snakemake goes through (its handlers are replaced
    when Snakemake sets up logging; its filters stay)."""
    from snakemake.logging import logger

    return logger


def snakemake_main(args: list[str]) -> None:
    """Snakemake's command line in this process (exits with its status)."""
    from snakemake.cli import main

    main(args)
