"""Run one upstream Snakemake test case under one executor mode.

    python -m tests.conformance.runner MODE CASE

MODE is one of MODES: Snakemake's own executors (``local``, ``slurm``) or the
hybrid executor with every rule local (``hybrid``), every rule on SLURM
(``hybrid-slurm``), every rule on SLURM and bundled (``hybrid-bundled``:
``--hybrid-bundle '*'``, docs/bundling.md) or every other rule on SLURM
(``hybrid-mixed``). The upstream
test function runs unchanged; only its calls of ``run()`` get the executor,
settings and ``nodes`` (``--jobs``) of the mode: a case written for a cluster keeps
its ``nodes`` (``cluster=`` commands are dropped: the mode's executor replaces
them); a case written for ``--executor local`` gets as many jobs as its cores.
Exit status 0: passed; 1: failed; 5: the case skipped itself.
"""

import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conformance import upstream

MODES = ("local", "hybrid", "slurm", "hybrid-slurm", "hybrid-bundled", "hybrid-mixed")
STATUS_INTERVAL = 1  # seconds between SLURM status checks in the SLURM modes
RULE = re.compile(r"^\s*(?:rule|checkpoint)(?:\s+(\w+))?\s*:", re.MULTILINE)


def rule_names(workdir: Path) -> list[str]:
    """Names of the rules defined in the case's Snakefiles (for the mixed mode); an
    anonymous rule is named by its number, as Snakemake names it."""
    names: set[str] = set()
    for path in sorted(workdir.rglob("*")):
        if path.is_file() and (path.name == "Snakefile" or path.suffix in (".smk", ".rules")):
            found = RULE.findall(path.read_text(errors="replace"))
            names.update(name or str(number) for number, name in enumerate(found, 1))
    return sorted(names)


def executor_of(mode: str, path: Path) -> tuple[str, Any]:
    """The executor name and settings object of ``mode`` for the case in ``path``."""
    if mode == "local":
        return "local", None
    if mode == "slurm":
        from snakemake_executor_plugin_slurm import ExecutorSettings as SlurmSettings

        return "slurm", SlurmSettings(init_seconds_before_status_checks=STATUS_INTERVAL)
    from snakemake_executor_plugin_slurm import ExecutorSettings as SlurmSettings

    from snakemake_executor_hybrid.settings import ExecutorSettings

    slurm = SlurmSettings(init_seconds_before_status_checks=STATUS_INTERVAL)
    if mode == "hybrid":
        return "hybrid", ExecutorSettings(default_backend="local")
    if mode in ("hybrid-slurm", "hybrid-bundled"):
        return "hybrid", ExecutorSettings(
            default_backend="slurm",
            slurm_status_interval=STATUS_INTERVAL,
            backend_settings={"slurm": slurm},
            bundle="*" if mode == "hybrid-bundled" else None,
        )
    routes = ",".join(f"{name}=slurm" for name in rule_names(path)[::2])
    return "hybrid", ExecutorSettings(
        routes=routes or None,
        slurm_status_interval=STATUS_INTERVAL,
        backend_settings={"slurm": slurm},
    )


def patched_run(original: Callable[..., Any], mode: str) -> Callable[..., Any]:
    def run(
        path: Any,
        *args: Any,
        executor: str = "local",
        executor_settings: Any = None,
        nodes: int | None = None,
        cluster: str | None = None,
        cluster_status: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if executor != "local":
            raise RuntimeError(f"case asks for executor {executor!r}: not a conformance case")
        name, settings = executor_of(mode, Path(path))
        if name != "local" and nodes is None:
            # a cluster case keeps upstream's 3 nodes; a case written for --executor
            # local runs as many jobs at once as it gives cores there
            nodes = 3 if cluster is not None else int(kwargs.get("cores", 3) or 3)
        return original(
            path, *args, executor=name, executor_settings=settings, nodes=nodes, **kwargs
        )

    return run


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in MODES:
        print(f"usage: python -m tests.conformance.runner {{{','.join(MODES)}}} CASE")
        return 2
    mode, case = argv
    module = upstream.load("tests")
    module.run = patched_run(module.run, mode)
    import pytest

    try:
        getattr(module, case)()
    except pytest.skip.Exception as e:
        print(f"SKIPPED: {e}")
        return 5
    except BaseException:  # noqa: BLE001 - the case failed, whatever it raised
        traceback.print_exc()
        print(f"FAILED: {case} under {mode}")
        return 1
    print(f"PASSED: {case} under {mode}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
