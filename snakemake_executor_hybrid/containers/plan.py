"""Which rules run in a container, with which runtime, checked before jobs start.

For every rule with a ``container:`` image (its own or the workflow's), the
plan picks a runtime (resource ``container_runtime``, else
``--hybrid-container-runtime`` for the rule's backend, else the backend's
preferred runtimes found on PATH), writes a launcher (see ``launch``) and gives
the rule Snakemake's standard ``shell_exec`` resource pointing at it: in this
process as ``--set-resources`` does, and in every Snakemake the backends spawn
(group jobs, SLURM jobs) through ``--set-resources`` on its command line
(:meth:`ContainerPlan.shell_exec`). Under Snakemake's own
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

from .. import compat
from ..backends.base import Capabilities
from .runtimes import (
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
    known, value = compat.static_resource(rule, name)
    if not known:
        raise WorkflowError(
            f"Rule '{rule.name}': resource '{name}' must be a plain string, not a "
            "function of the job."
        )
    return None if value in (None, "") else str(value)


class ContainerPlan:
    def __init__(
        self,
        workflow: Any,
        settings: Any,
        logger: Any,
        backend_of: Callable[[Any], str | None],
        backends: dict[str, Capabilities],
        skip: frozenset[str] = frozenset(),
    ) -> None:
        self._logger = logger
        self.specs: dict[str, ContainerSpec] = {}
        self._problems: dict[str, str] = {}  # rule -> why its jobs cannot run
        self._present: set[tuple[str, str]] = set()  # (runtime, image) checked
        self._launchers: dict[str, str] = {}
        if compat.uses_apptainer(workflow):
            return  # Snakemake runs container: rules with apptainer itself
        # backends that run the image themselves take no runtime of ours
        self._preferred = {
            name: caps.container_runtimes
            for name, caps in backends.items()
            if not caps.wraps_containers
        }
        self._runtimes = parse_runtimes(settings.container_runtime, tuple(self._preferred))
        self._args = split_args(settings.container_args, "--hybrid-container-args")
        self._env = split_names(settings.container_env, "--hybrid-container-env")
        rules = compat.rules(workflow)
        for rule in rules:
            if backend_of(rule) not in (None, *self._preferred):
                continue  # a backend that runs the image itself (cloud)
            if compat.rule_container(rule) and rule.name not in skip:
                try:
                    spec = self._spec(rule, backend_of(rule))
                except WorkflowError as e:
                    self._problems[rule.name] = str(e)
                    continue
                self.specs[rule.name] = spec
                self._launchers[rule.name] = self._write_launcher(spec)
                compat.set_rule_resource(rule, SHELL_RESOURCE, self._launchers[rule.name])
        self._check_groups(rules)

    def shell_exec(self) -> dict[str, dict[str, str]]:
        """``{rule: {"shell_exec": launcher}}`` for the command line of spawned jobs."""
        return {rule: {SHELL_RESOURCE: path} for rule, path in sorted(self._launchers.items())}

    def _check_groups(self, rules: list[Any]) -> None:
        """A group job has one ``shell_exec``: all its rules need the same container."""
        groups: dict[str, list[str]] = defaultdict(list)
        for rule in rules:
            group = compat.rule_group(rule)
            if group is not None:
                groups[group].append(rule.name)
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
        for name in self._preferred:
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
        preferred = self._preferred.get(backend, ())
        for name in preferred:
            if shutil.which(name):
                return name
        tried = f" ({', '.join(preferred)})" if preferred else ""
        raise WorkflowError(
            f"Rule '{rule.name}' runs in container {compat.rule_container(rule)!r} on "
            f"backend '{backend}', but no container runtime{tried} is on PATH here. "
            "Install one, or name it with --hybrid-container-runtime."
        )

    def _spec(self, rule: Any, backend: str | None) -> ContainerSpec:
        url = compat.rule_container(rule)
        if not isinstance(url, str) or "{" in url:
            raise WorkflowError(
                f"Rule '{rule.name}': a container image that depends on wildcards or "
                "on a function is supported only with --software-deployment-method "
                "apptainer; give the rule a fixed image."
            )
        runtime = self._runtime(rule, backend)
        workdir = os.getcwd()
        binds = [Bind(str(Path(compat.rule_basedir(rule)).resolve()), read_only=True)]
        # script: preambles import snakemake from where it is installed
        site = compat.snakemake_site()
        if not site.startswith("/usr/"):  # never shadow the image's system Python
            binds.append(Bind(site, read_only=True))
        shell = _static(rule, SHELL_RESOURCE) or compat.shell_executable()
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
