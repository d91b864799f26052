"""Which rules run in a container, with which runtime, checked before jobs start.

For every rule with a ``container:`` image (its own or the workflow's), the
plan picks a runtime (resource ``container_runtime``, else
``--hybrid-container-runtime`` for the rule's backend, else the first runtime
found on PATH), writes a launcher (see ``launch``) and points the rule's
``shell_exec`` resource at it; the resource reaches spawned and SLURM jobs
through ``--set-resources`` like any other. Under Snakemake's own
``--software-deployment-method apptainer`` the plan does nothing: Snakemake
wraps the commands itself.
"""

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from snakemake_interface_common.exceptions import WorkflowError

from snakemake_human_gate.fsutil import write_atomic

from .runtimes import (
    PREFERRED,
    Bind,
    ContainerSpec,
    check_runtime,
    exists_argv,
    image_for,
    parse_runtimes,
    pull_argv,
    split_args,
    split_names,
)

RUNTIME_RESOURCE = "container_runtime"
ARGS_RESOURCE = "container_args"
SHELL_RESOURCE = "shell_exec"
LAUNCHER_DIR = Path(".snakemake", "hybrid", "containers")


def _static(rule: Any, name: str) -> str | None:
    """A rule resource that must be a plain string (no function of the job)."""
    res = rule.resources.get(name)
    if res is None:
        return None
    if res.is_evaluable():
        raise WorkflowError(
            f"Rule '{rule.name}': resource '{name}' must be a plain string, not a "
            "function of the job."
        )
    return None if res.value in (None, "") else str(res.value)


class ContainerPlan:
    def __init__(
        self,
        workflow: Any,
        settings: Any,
        logger: Any,
        backend_of: Callable[[Any], str | None],
        backends: tuple[str, ...],
        skip: frozenset[str] = frozenset(),
    ) -> None:
        from snakemake.settings.types import DeploymentMethod

        self._logger = logger
        self.specs: dict[str, ContainerSpec] = {}
        self._problems: dict[str, str] = {}  # rule -> why its jobs cannot run
        self._present: set[tuple[str, str]] = set()  # (runtime, image) checked
        self._launchers: dict[str, str] = {}
        if DeploymentMethod.APPTAINER in workflow.deployment_settings.deployment_method:
            return  # Snakemake runs container: rules with apptainer itself
        self._backends = backends
        self._runtimes = parse_runtimes(settings.container_runtime, backends)
        self._args = split_args(settings.container_args, "--hybrid-container-args")
        self._env = split_names(settings.container_env, "--hybrid-container-env")
        for rule in workflow.rules:
            if rule.container_img and rule.name not in skip:
                try:
                    spec = self._spec(workflow, rule, backend_of(rule))
                except WorkflowError as e:
                    self._problems[rule.name] = str(e)
                    continue
                self.specs[rule.name] = spec
                self._launchers[rule.name] = self._write_launcher(spec)
                _use_launcher(workflow, rule, self._launchers[rule.name])
        self._check_groups(workflow.rules)

    def _check_groups(self, rules: Any) -> None:
        """A group job has one ``shell_exec``: all its rules need the same container."""
        groups: dict[str, list[str]] = defaultdict(list)
        for rule in rules:
            if rule.group is not None:
                groups[rule.group].append(rule.name)
        for group, names in groups.items():
            if len({self._launchers.get(n) for n in names}) > 1:
                detail = "; ".join(
                    f"{n}: {self.specs[n].image} ({self.specs[n].runtime})"
                    if n in self.specs
                    else f"{n}: native"
                    for n in sorted(names)
                )
                for name in names:
                    self._problems[name] = (
                        f"Group '{group}' mixes containers ({detail}). The rules of a group "
                        "run as one job with one container set-up: give them the same "
                        "image, runtime and container_args, or take them out of the group."
                    )

    def _runtime(self, rule: Any, backend: str | None) -> str:
        explicit = _static(rule, RUNTIME_RESOURCE)
        if explicit:
            return check_runtime(explicit, f"resource '{RUNTIME_RESOURCE}'", rule.name)
        if backend is not None:
            return self._backend_runtime(rule, backend)
        # the backend depends on the job: fine if every backend would use the same runtime
        found = set()
        for name in self._backends:
            try:
                found.add(self._backend_runtime(rule, name))
            except WorkflowError:
                continue
        if len(found) == 1:
            return found.pop()
        runtimes = ", ".join(sorted(found)) or "none found"
        raise WorkflowError(
            f"Rule '{rule.name}' runs in a container and its backend depends on the job, "
            f"but the backends would use different runtimes ({runtimes}): "
            f"set resource {RUNTIME_RESOURCE} (e.g. 'podman')."
        )

    def _backend_runtime(self, rule: Any, backend: str) -> str:
        if backend in self._runtimes:
            return self._runtimes[backend]
        for name in PREFERRED.get(backend, ()):
            if shutil.which(name):
                return name
        raise WorkflowError(
            f"Rule '{rule.name}' runs in container {rule.container_img!r} on backend "
            f"'{backend}', but no container runtime ({', '.join(PREFERRED[backend])}) is "
            "on PATH here. Install one, or name it with --hybrid-container-runtime."
        )

    def _spec(self, workflow: Any, rule: Any, backend: str | None) -> ContainerSpec:
        url = rule.container_img
        if not isinstance(url, str) or "{" in url:
            raise WorkflowError(
                f"Rule '{rule.name}': a container image that depends on wildcards or "
                "on a function is supported only with --software-deployment-method "
                "apptainer; give the rule a fixed image."
            )
        runtime = self._runtime(rule, backend)
        workdir = os.getcwd()
        binds = [Bind(str(Path(rule.basedir).resolve()), read_only=True)]
        # script: preambles import snakemake from where it is installed
        import snakemake

        site = os.path.dirname(os.path.dirname(snakemake.__file__ or "/usr/"))
        if not site.startswith("/usr/"):  # never shadow the image's system Python
            binds.append(Bind(site, read_only=True))
        shell = _static(rule, SHELL_RESOURCE) or _snakemake_shell()
        return ContainerSpec(
            runtime=runtime,
            image=image_for(runtime, url, rule.name),
            shell=os.path.basename(shell),
            workdir=workdir,
            binds=tuple(binds),
            env=self._env,
            args=self._args + split_args(_static(rule, ARGS_RESOURCE), f"resource {ARGS_RESOURCE}"),
            uid=os.getuid(),
            gid=os.getgid(),
            labels={"snakemake.hybrid.workdir": workdir},
        )

    def _write_launcher(self, spec: ContainerSpec) -> str:
        text = json.dumps(asdict(spec), indent=1, sort_keys=True) + "\n"
        name = hashlib.sha256(text.encode()).hexdigest()[:16]
        folder = Path.cwd() / LAUNCHER_DIR
        folder.mkdir(parents=True, exist_ok=True)
        spec_path, launcher = folder / f"{name}.json", folder / f"{name}.sh"
        if not launcher.exists():
            write_atomic(spec_path, text, 0o644)
            argv = [sys.executable, "-m", "snakemake_executor_hybrid.containers.launch"]
            script = f'#!/bin/sh\nexec {shlex.join([*argv, str(spec_path)])} "$@"\n'
            write_atomic(launcher, script, 0o755)
        return str(launcher)

    # -- checks ----------------------------------------------------------------

    def check(self, rule: str) -> None:
        """Raise a WorkflowError if jobs of ``rule`` cannot run in their container."""
        if rule in self._problems:
            raise WorkflowError(self._problems[rule])
        spec = self.specs.get(rule)
        if spec is None or (spec.runtime, spec.image) in self._present:
            return
        try:
            self._check_image(rule, spec)
        except WorkflowError as e:
            self._problems[rule] = str(e)
            raise
        self._present.add((spec.runtime, spec.image))

    def _check_image(self, rule: str, spec: ContainerSpec) -> None:
        what = f"Rule '{rule}': image {spec.image!r} with {spec.runtime}"
        if shutil.which(spec.runtime) is None:
            raise WorkflowError(
                f"{what}: '{spec.runtime}' is not on PATH. Install it, or choose another "
                f"runtime (resource {RUNTIME_RESOURCE}, --hybrid-container-runtime)."
            )
        exists = exists_argv(spec.runtime, spec.image)
        if exists is None:
            if spec.image.startswith("/") and not os.path.exists(spec.image):
                raise WorkflowError(f"{what}: the image file does not exist.")
            return  # URLs are fetched by apptainer itself
        if _run(exists, 120).returncode == 0:
            return
        self._logger.info(f"hybrid: pulling {spec.image} with {spec.runtime} for rule {rule}")
        done = _run(pull_argv(spec.runtime, spec.image), 1800)
        if done.returncode != 0:
            tail = " ".join(done.stderr.strip().splitlines()[-3:])
            raise WorkflowError(
                f"{what}: the image is not present and pulling it failed: {tail} "
                f"Build or load it first (e.g. '{spec.runtime} load', '{spec.runtime} build')."
            )


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 1, "", f"'{shlex.join(argv)}' timed out")


def _snakemake_shell() -> str:
    from snakemake.shell import shell

    return shell.get_executable() or "sh"


def _use_launcher(workflow: Any, rule: Any, launcher: str) -> None:
    """Set ``shell_exec`` here and in every job Snakemake spawns (``--set-resources``)."""
    from snakemake.resources import Resource, Resources

    value = Resource(SHELL_RESOURCE, launcher, raw=repr(launcher))
    rule.resources[SHELL_RESOURCE] = value
    overwrite = workflow.resource_settings._parsed_overwrite_resources
    overwrite.setdefault(rule.name, Resources())[SHELL_RESOURCE] = value
