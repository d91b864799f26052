"""Dispatch overhead: N trivial jobs through the hybrid executor vs Snakemake's own.

    python bench/dispatch.py --backend local --n 200 --repeat 3
    python bench/dispatch.py --backend slurm --n 200 --repeat 1   # needs scripts/slurm/up

local: hybrid -> local    vs  --executor local   (same core budget)
slurm: hybrid -> slurm    vs  --executor slurm   (same --jobs; upstream status checks
       start after 1 s instead of its default 40 s, its best case; add
       --upstream-defaults to also time it as installed)
Ratio = median wall time / median of the native executor. Goal: <= 1.05.
"""

import argparse

from common import report, side_by_side, workflow

SNAKEFILE = """
rule all:
    input: expand("out/{{i}}.txt", i=range({n}))

rule trivial:
    output: "out/{{i}}.txt"
    shell: "touch {{output}}"
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["local", "slurm"], default="local")
    parser.add_argument("--n", type=int, default=200, help="number of trivial jobs")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2, help="local core budget")
    parser.add_argument("--jobs", type=int, default=100, help="--jobs for SLURM runs")
    parser.add_argument("--upstream-defaults", action="store_true")
    args = parser.parse_args()

    wd = workflow(SNAKEFILE.format(n=args.n))
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
    print(f"{args.n} trivial jobs, backend {args.backend}, {args.repeat} round(s) in {wd}")
    times = side_by_side(wd, variants, args.repeat)
    report(f"{args.n} trivial jobs on {args.backend}", times, baseline=next(iter(variants)))


if __name__ == "__main__":
    main()
