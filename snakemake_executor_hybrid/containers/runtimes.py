"""Container runtimes as pure functions: settings parsers, image references, argv lists.

Nothing here runs a process. ``plan`` checks images with these argv lists at
start-up; ``launch`` runs a job's shell command with :func:`run_argv`.
"""

import os
import shlex
from dataclasses import dataclass, field

from snakemake_interface_common.exceptions import WorkflowError

OCI = ("podman", "docker")  # daemon/OCI-store runtimes: images by name
SIF = ("apptainer", "singularity")  # HPC runtimes: .sif files or docker:// URLs
RUNTIMES = OCI + SIF

# Set by Snakemake for every shell command (threads, tmpdir), or by SLURM for GPUs.
PASSED_ENV = (
    "OMP_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "TMPDIR",
    "TMP",
    "TEMP",
    "TEMPDIR",
    "CUDA_VISIBLE_DEVICES",
)
TMP_VARS = ("TMPDIR", "TMP", "TEMP", "TEMPDIR")
# Passed through by prefix: what SLURM sets for a job (SLURM_JOB_ID, SLURM_CPUS_PER_TASK,
# ...) and the process-management variables MPI launchers read inside an allocation.
# apptainer passes the whole environment itself.
PASSED_PREFIXES = ("SLURM_", "PMI_", "PMIX_")

RUNTIME_FLAG = "--hybrid-container-runtime (profile key 'hybrid-container-runtime')"


@dataclass(frozen=True)
class Bind:
    path: str
    read_only: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to run shell commands in a container (rules of one group
    must share it: Snakemake allows one ``shell_exec`` per group job)."""

    runtime: str
    image: str  # as the runtime takes it (see image_for)
    shell: str  # the shell inside the container, e.g. "bash"
    workdir: str
    binds: tuple[Bind, ...] = ()
    env: tuple[str, ...] = ()  # extra variable names passed through
    args: tuple[str, ...] = ()  # extra runtime arguments, before the image
    uid: int = 0
    gid: int = 0
    labels: dict[str, str] = field(default_factory=dict)


def check_runtime(name: str, source: str, rule: str | None = None) -> str:
    if name not in RUNTIMES:
        subject = f"Rule '{rule}': " if rule else ""
        raise WorkflowError(
            f"{subject}unknown container runtime {name!r} (from {source}). "
            f"Valid runtimes: {', '.join(RUNTIMES)}."
        )
    return name


def parse_runtimes(text: str | None, backends: tuple[str, ...]) -> dict[str, str]:
    """``podman`` (every backend) or ``local=podman,slurm=apptainer`` -> {backend: runtime}."""
    result: dict[str, str] = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        backend, sep, runtime = (s.strip() for s in part.partition("="))
        if not sep:
            runtime = backend
            for name in backends:
                result[name] = check_runtime(runtime, RUNTIME_FLAG)
            continue
        if backend not in backends or not runtime:
            raise WorkflowError(
                f"Invalid item {part!r} in {RUNTIME_FLAG}: expected RUNTIME or a "
                f"comma-separated list of BACKEND=RUNTIME with BACKEND one of "
                f"{', '.join(backends)}, e.g. 'local=podman,slurm=apptainer'."
            )
        result[backend] = check_runtime(runtime, f"item {part!r} of {RUNTIME_FLAG}")
    return result


def split_args(text: str | None, source: str) -> tuple[str, ...]:
    """Extra runtime arguments, split like a shell would (no shell runs them)."""
    try:
        return tuple(shlex.split(text or ""))
    except ValueError as e:
        raise WorkflowError(f"Cannot split {source} {text!r} into arguments: {e}.") from e


def split_names(text: str | None, source: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in (text or "").split(",") if n.strip())
    for name in names:
        if not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise WorkflowError(
                f"{source}: {name!r} is not an environment variable name; give a "
                "comma-separated list of names, e.g. 'WANDB_API_KEY,HF_HOME'."
            )
    return names


def image_for(runtime: str, url: str, rule: str) -> str:
    """The image reference as ``runtime`` takes it, or a WorkflowError saying why not.

    ``docker://NAME`` and plain ``NAME`` work with podman and docker; apptainer and
    singularity take ``docker://NAME``, ``library://...``, ``oras://...`` or a
    ``.sif`` file.
    """
    url = url.strip()
    if not url:
        raise WorkflowError(f"Rule '{rule}': empty container image.")
    scheme, sep, rest = url.partition("://")
    is_sif = url.endswith(".sif") or url.endswith(".simg")
    if runtime in OCI:
        if is_sif:
            raise WorkflowError(
                f"Rule '{rule}': image {url!r} is a Singularity image file, which "
                f"{runtime} cannot run. Use apptainer (resource container_runtime="
                f"'apptainer') or a docker:// image."
            )
        if sep and scheme != "docker":
            raise WorkflowError(
                f"Rule '{rule}': {runtime} cannot run image {url!r}: use "
                "docker://NAME or a local image name."
            )
        return rest if sep else url
    if sep or is_sif:
        return url if sep else os.path.abspath(url)
    raise WorkflowError(
        f"Rule '{rule}': {runtime} cannot run image {url!r}: give docker://{url} "
        "or the path of a .sif file."
    )


def exists_argv(runtime: str, image: str) -> list[str] | None:
    """A command exiting 0 when ``image`` is present locally; None: check the file."""
    if runtime == "podman":
        return ["podman", "image", "exists", image]
    if runtime == "docker":
        return ["docker", "image", "inspect", "--format", "{{.Id}}", image]
    return None


def pull_argv(runtime: str, image: str) -> list[str]:
    """podman/docker: fetch ``image`` from its registry."""
    return [runtime, "pull", image]


def _binds(spec: ContainerSpec, environ: dict[str, str]) -> list[Bind]:
    """Working directory first, then the rest; skip what an earlier bind covers."""
    wanted = [Bind(spec.workdir), *spec.binds]
    wanted += [Bind(environ[v]) for v in TMP_VARS if environ.get(v)]
    chosen: list[Bind] = []
    for bind in wanted:
        path = os.path.normpath(bind.path)
        inside = any(path == b.path or path.startswith(b.path.rstrip("/") + "/") for b in chosen)
        if not inside and (bind.path == spec.workdir or os.path.exists(path)):
            chosen.append(Bind(path, bind.read_only))
    return chosen


def kill_argv(runtime: str, name: str) -> list[str] | None:
    """Kill a running container by name; None: the runtime's process is the container."""
    return [runtime, "kill", name] if runtime in OCI else None


def run_argv(
    spec: ContainerSpec, command: str, environ: dict[str, str], name: str | None = None
) -> list[str]:
    """The argv that runs ``command`` with ``spec.shell -c`` inside the container.

    Paths keep their host names inside; the working directory is the same;
    files are written as the submitting user; thread and tmpdir variables (and
    those named in ``spec.env``) are passed through from ``environ``.
    """
    if spec.shell == "bash":
        command = f"set -euo pipefail; {command}"  # what Snakemake prefixes for bash
    binds = _binds(spec, environ)
    prefixed = tuple(sorted(n for n in environ if n.startswith(PASSED_PREFIXES)))
    names = [n for n in dict.fromkeys(PASSED_ENV + prefixed + spec.env) if n in environ]
    if spec.runtime in SIF:
        argv = [spec.runtime, "exec", "--home", spec.workdir, "--pwd", spec.workdir]
        for b in binds:
            argv += ["--bind", f"{b.path}:{b.path}:ro" if b.read_only else b.path]
        # apptainer passes the environment through itself
        return [*argv, *spec.args, spec.image, spec.shell, "-c", command]
    argv = [spec.runtime, "run", "--rm", "--init", "--network=host", "--workdir", spec.workdir]
    if name:
        argv += ["--name", name]
    if spec.runtime == "podman":
        # rootless podman maps the caller to itself; SELinux labels are left alone
        argv += ["--security-opt=label=disable"]
        if spec.uid != 0:
            argv += ["--userns=keep-id"]
    else:
        argv += ["--user", f"{spec.uid}:{spec.gid}"]
    for b in binds:
        argv += ["--volume", f"{b.path}:{b.path}" + (":ro" if b.read_only else "")]
    argv += ["--env", f"HOME={spec.workdir}"]
    for name in names:
        argv += ["--env", name]  # the value comes from the runtime client's environment
    for key, value in sorted(spec.labels.items()):
        argv += ["--label", f"{key}={value}"]
    return [*argv, *spec.args, spec.image, spec.shell, "-c", command]
