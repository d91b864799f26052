"""How soon a finished SLURM job is noticed: hybrid vs snakemake-executor-plugin-slurm.

    python bench/slurm_notice.py --repeat 5      # needs scripts/slurm/up

One job per run (``sleep 1``). Measured: from the moment the job's shell command
ended (it writes a timestamp as its last act) to the moment Snakemake exited,
i.e. the inner Snakemake's own exit, SLURM's accounting and the status polling.
"""

import argparse
import statistics
import subprocess
import sys
import time

from common import clean, workflow

SNAKEFILE = """
rule one:
    output: "done.txt"
    resources: runtime=5, mem_mb=500
    shell: "sleep 1; date +%s.%N > {output}"
"""

VARIANTS = {
    "hybrid (slurm), default settings": [
        "--executor",
        "hybrid",
        "--hybrid-default-backend",
        "slurm",
    ],
    "slurm plugin, init 1 s": [
        "--executor",
        "slurm",
        "--slurm-init-seconds-before-status-checks",
        "1",
    ],
    "slurm plugin, default settings": ["--executor", "slurm"],
}


def notice_seconds(wd, args) -> float:
    clean(wd)
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "--jobs", "1", *args],
        cwd=wd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    exited = time.time()
    if run.returncode != 0:
        raise SystemExit(run.stderr[-3000:])
    return exited - float((wd / "done.txt").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--repeat-defaults", type=int, default=2, help="runs of the slow default")
    args = parser.parse_args()
    wd = workflow(SNAKEFILE)
    results = {}
    for name, flags in VARIANTS.items():
        n = (
            args.repeat_defaults
            if name.endswith("default settings") and "plugin" in name
            else args.repeat
        )
        results[name] = [notice_seconds(wd, flags) for _ in range(n)]
        print(f"  {name:<36} {' '.join(f'{s:.1f}' for s in results[name])}", flush=True)
    print(f"\n{'variant':<36}{'median s':>10}{'max s':>8}")
    for name, values in results.items():
        print(f"{name:<36}{statistics.median(values):>10.1f}{max(values):>8.1f}")


if __name__ == "__main__":
    main()
