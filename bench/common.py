"""Helpers shared by the benchmark scripts: temp workflows, timed runs, tables."""

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def workflow(snakefile: str) -> Path:
    wd = Path(tempfile.mkdtemp(prefix="hybrid-bench-"))
    (wd / "Snakefile").write_text(snakefile)
    return wd


def clean(wd: Path) -> None:
    for entry in wd.iterdir():
        if entry.name != "Snakefile":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def timed_snakemake(wd: Path, args: list[str], timeout: float = 7200) -> float:
    """Wall seconds of one clean ``python -m snakemake`` run; raises if it fails."""
    clean(wd)
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=wd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"run failed: snakemake {' '.join(args)}\n{run.stderr[-3000:]}")
    return elapsed


def side_by_side(wd: Path, variants: dict[str, list[str]], repeat: int) -> dict[str, list[float]]:
    """Run the variants interleaved (a b a b ...) so drift hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_no in range(repeat):
        for name, args in variants.items():
            seconds = timed_snakemake(wd, args)
            times[name].append(seconds)
            print(f"  round {round_no + 1}: {name:<46} {seconds:8.2f} s", flush=True)
    return times


def report(title: str, times: dict[str, list[float]], baseline: str) -> None:
    base = statistics.median(times[baseline])
    print(f"\n{title}")
    print(f"{'variant':<48}{'median s':>10}{'min s':>9}{'ratio':>8}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<48}{median:>10.2f}{min(values):>9.2f}{median / base:>8.3f}")
