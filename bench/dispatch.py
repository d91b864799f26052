"""Dispatch overhead: N trivial jobs through the hybrid executor vs Snakemake's own.

    python bench/dispatch.py --backend local --n 200 --repeat 3
    python bench/dispatch.py --backend slurm --n 200 --repeat 1   # needs scripts/slurm/up
    python bench/dispatch.py --backend slurm --n 200 --sleep 1 --only bundled

local: hybrid -> local    vs  --executor local   (same core budget)
slurm: hybrid -> slurm    vs  --executor slurm   (same --jobs; upstream status checks
       start after 1 s instead of its default 40 s, its best case; add
       --upstream-defaults to also time it as installed, --array to time it with
       --slurm-array-jobs), and hybrid -> slurm with the jobs bundled
       (--hybrid-bundle, docs/bundling.md)
--sleep S: each job sleeps S seconds instead of doing nothing (the ideal on SLURM is
       N * S / the node's CPUs). --only: run only the variants whose name contains it.
Ratio = median wall time / median of the native executor. Goal: <= 1.05; bundled
jobs on SLURM: <= 0.2 of the native executor's best variant.
"""

import argparse

from common import report, side_by_side, workflow

SNAKEFILE = """
rule all:
    input: expand("out/{{i}}.txt", i=range({n}))

rule trivial:
    output: "out/{{i}}.txt"
    shell: "{command}touch {{output}}"
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["local", "slurm"], default="local")
    parser.add_argument("--n", type=int, default=200, help="number of trivial jobs")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2, help="local core budget")
    parser.add_argument("--jobs", type=int, default=100, help="--jobs for SLURM runs")
    parser.add_argument("--upstream-defaults", action="store_true")
    parser.add_argument("--array", action="store_true", help="add --slurm-array-jobs")
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds each job sleeps")
    parser.add_argument("--only", default="", help="run only variants whose name has this")
    args = parser.parse_args()

    command = f"sleep {args.sleep:g}; " if args.sleep else ""
    wd = workflow(SNAKEFILE.format(n=args.n, command=command))
    if args.backend == "local":
        variants = {
            "snakemake --executor local": ["--executor", "local", "--cores", str(args.cores)],
            "snakemake --executor hybrid (local)": [
                "--executor",
                "hybrid",
                "--jobs",
                str(args.n),
                "--hybrid-local-cores",
                str(args.cores),
            ],
        }
    else:
        common = ["--jobs", str(args.jobs), "--default-resources", "runtime=5", "mem_mb=500"]
        variants = {
            "snakemake --executor slurm (init 1 s)": [
                "--executor",
                "slurm",
                *common,
                "--slurm-init-seconds-before-status-checks",
                "1",
            ],
            "snakemake --executor hybrid (slurm)": [
                "--executor",
                "hybrid",
                *common,
                "--hybrid-default-backend",
                "slurm",
            ],
        }
        if args.upstream_defaults:
            variants["snakemake --executor slurm (defaults)"] = ["--executor", "slurm", *common]
        if args.array:
            variants["snakemake --executor slurm (array jobs)"] = [
                *variants["snakemake --executor slurm (init 1 s)"],
                "--slurm-array-jobs",
                "trivial",
            ]
        variants["snakemake --executor hybrid (slurm, bundled)"] = [
            *variants["snakemake --executor hybrid (slurm)"],
            "--hybrid-bundle",
            "trivial",
        ]
    variants = {name: v for name, v in variants.items() if args.only in name}
    what = f"{args.n} jobs of 'sleep {args.sleep:g}'" if args.sleep else f"{args.n} trivial jobs"
    print(f"{what}, backend {args.backend}, {args.repeat} round(s) in {wd}")
    times = side_by_side(wd, variants, args.repeat)
    report(f"{what} on {args.backend}", times, baseline=next(iter(variants)))


if __name__ == "__main__":
    main()
