"""Learned requests vs the static requests a careful user writes, on the real SLURM.

    python bench/learned.py                 # needs scripts/slurm/up (memory enforced)
    python bench/learned.py --n 24 --repeat 1 --train 1

A synthetic workflow: N inputs of 5..60 MB and two rules whose peak memory and
runtime grow with the input size, with +-10% noise that changes every round:
'align' holds about 4 MB per input MB, 'count' about 10 MB per input MB, each in a
job whose steps also hold a Snakemake (about 130 MB). Variants, side by side:

  static:  mem_mb=500 (align) and 1000 (count), enough for the largest input;
  learned: mem_mb=learned(default=<the same>), after --train training run(s).

Reported from each variant's run journal: requested-minus-used memory times the
job's elapsed time (MB*s, summed over jobs), failed attempts, retries, jobs lost
(the run fails), and the makespan. Goal: learned waste <= 40% of static, no job
lost, at most one retry per 20 jobs.
"""

import argparse
import re
import sqlite3
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import clean, timed_snakemake, workflow

SNAKEFILE = """
import os
import random
from snakemake_executor_hybrid import learned

N, ROUND, MODE = int(config["inputs"]), int(config["round"]), config["mode"]
SIZES = [5 + (i * 37) % 56 for i in range(N)]  # MB, spread over 5..60
STATIC = {"align": 500, "count": 1000}
SLOPE = {"align": (4.0, 0.05), "count": (10.0, 0.03)}  # MB per input MB, s per input MB
GROW = ("python3 -c 'import time; b = bytearray({mb} << 20); "
        "b[::4096] = b\\"x\\" * len(b[::4096]); time.sleep({s})'")


def request(rule):
    return learned(default=STATIC[rule]) if MODE == "learned" else STATIC[rule]


def command(rule):
    def make(wildcards, input):
        size = os.path.getsize(input[0]) / 2**20
        noise = random.Random(f"{rule}-{wildcards.i}-{ROUND}").uniform(0.9, 1.1)
        per_mb, per_s = SLOPE[rule]
        return GROW.format(mb=round(per_mb * size * noise), s=round(1 + per_s * size * noise, 2))
    return make


localrules: all, prepare

rule all:
    input: expand("out/{rule}/{i}.txt", rule=("align", "count"), i=range(N))

rule prepare:
    output: "data/{i}.bin"
    run:
        with open(output[0], "wb") as f:
            f.truncate(SIZES[int(wildcards.i)] << 20)

for name in ("align", "count"):
    rule:
        name: name
        input: "data/{i}.bin"
        output: f"out/{name}/{{i}}.txt"
        resources: mem_mb=request(name), runtime=10
        params: command=command(name)
        shell: "{params.command} && touch {output}"
"""


def measure(history: Path, since: float) -> dict[str, float]:
    with sqlite3.connect(history) as db:
        rows = db.execute(
            "SELECT req_mem_mb, used_mem_mb, used_wall_s, state, attempt FROM jobs "
            "WHERE ended >= ? AND rule != 'prepare'",
            (since,),
        ).fetchall()
        last = db.execute(  # each job's last attempt
            "SELECT state FROM jobs j WHERE ended >= ? AND attempt = (SELECT max(attempt) "
            "FROM jobs WHERE rule = j.rule AND wildcards = j.wildcards AND ended >= ?)",
            (since, since),
        ).fetchall()
    waste = sum(
        max(0.0, req - used) * wall
        for req, used, wall, _, _ in rows
        if None not in (req, used, wall)
    )
    return {
        "attempts": len(rows),
        "waste": waste,
        "failures": sum(state != "succeeded" for _, _, _, state, _ in rows),
        "retries": sum(attempt > 1 for *_, attempt in rows),
        "lost": sum(state != "succeeded" for (state,) in last),
        "unmeasured": sum(used is None for _, used, *_ in rows),
    }


UP = Path(__file__).resolve().parent.parent / "scripts" / "slurm" / "up"


def enforce_memory() -> None:
    """The cluster must enforce memory and sample every second (MaxRSS of short jobs):
    scripts/slurm/up configures it so; run it again if the configuration changed."""
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True).stdout
    if not re.search(r"JobAcctGatherParams\s*=\s*OverMemoryKill", config) or not re.search(
        r"JobAcctGatherFrequency\s*=\s*1\b", config
    ):
        print("  (SLURM did not enforce memory: scripts/slurm/up)", flush=True)
        subprocess.run([str(UP)], check=True, capture_output=True)


def run(wd: Path, history: Path, mode: str, n: int, round_no: int, jobs: int) -> dict[str, float]:
    args = [
        "--executor", "hybrid", "--jobs", str(jobs), "--retries", "2",
        "--hybrid-default-backend", "slurm", "--hybrid-slurm-status-interval", "1",
        "--hybrid-history", str(history),
        "--config", f"inputs={n}", f"round={round_no}", f"mode={mode}",
    ]  # fmt: skip
    enforce_memory()
    since = time.time()
    makespan = timed_snakemake(wd, args)
    return {**measure(history, since), "makespan": makespan}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=24, help="inputs (jobs per rule)")
    parser.add_argument("--train", type=int, default=1, help="training runs of 'learned'")
    parser.add_argument("--repeat", type=int, default=1, help="measured rounds")
    parser.add_argument("--jobs", type=int, default=10, help="--jobs of each run")
    args = parser.parse_args()

    wd = workflow(SNAKEFILE)
    journals = Path(tempfile.mkdtemp(prefix="hybrid-bench-journals-"))
    history = {mode: journals / f"{mode}.sqlite" for mode in ("static", "learned")}
    print(f"{2 * args.n} jobs a run (2 rules x {args.n} inputs) in {wd}, journals in {journals}")
    for t in range(args.train):
        result = run(wd, history["learned"], "learned", args.n, -1 - t, args.jobs)
        print(f"  training run {t + 1}: {result['makespan']:.1f} s", flush=True)
    results: dict[str, list[dict[str, float]]] = {"static": [], "learned": []}
    for round_no in range(args.repeat):
        for mode in results:  # side by side: static, learned, static, learned ...
            result = run(wd, history[mode], mode, args.n, round_no, args.jobs)
            results[mode].append(result)
            print(
                f"  round {round_no + 1}: {mode:<8} {result['makespan']:7.1f} s  "
                f"waste {result['waste']:10.0f} MB*s  failed {result['failures']:.0f}  "
                f"retries {result['retries']:.0f}  unmeasured {result['unmeasured']:.0f}",
                flush=True,
            )
    clean(wd)

    base = statistics.median(r["waste"] for r in results["static"])
    print(f"\n{2 * args.n} jobs on SLURM, median of {args.repeat} round(s)")
    print(
        f"{'variant':<10}{'waste MB*s':>12}{'ratio':>8}{'failed':>8}{'retries':>9}"
        f"{'lost':>6}{'makespan s':>12}"
    )
    for mode, rounds in results.items():
        waste = statistics.median(r["waste"] for r in rounds)
        print(
            f"{mode:<10}{waste:>12.0f}{waste / base:>8.2f}"
            f"{statistics.median(r['failures'] for r in rounds):>8.0f}"
            f"{statistics.median(r['retries'] for r in rounds):>9.0f}"
            f"{statistics.median(r['lost'] for r in rounds):>6.0f}"
            f"{statistics.median(r['makespan'] for r in rounds):>12.1f}"
        )
    unmeasured = sum(r["unmeasured"] for rounds in results.values() for r in rounds)
    if unmeasured:
        print(f"({unmeasured} job(s) without a memory measurement are left out of the waste)")


if __name__ == "__main__":
    main()
