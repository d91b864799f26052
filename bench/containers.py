"""Per-job cost of running a trivial job in a container vs natively, local and on SLURM.

    python bench/containers.py --backend local --n 30 --repeat 3
    python bench/containers.py --backend slurm --n 10 --repeat 1   # needs scripts/slurm/up

Needs scripts/containers/up (podman and the image localhost/hybrid-test:bookworm).
Both variants run through `--executor hybrid`; the only difference is the rule's
`container:` line. Local jobs run one at a time, so the time difference divided by
N is the per-job overhead; SLURM runs with --jobs 2 (this node's two CPUs).
"""

import argparse
import statistics
import subprocess
import time

from common import report, timed_snakemake, workflow

IMAGE = "localhost/hybrid-test:bookworm"
SNAKEFILE = """
rule all:
    input: expand("out/{{i}}.txt", i=range({n}))

rule trivial:
    output: "out/{{i}}.txt"
    {container}
    shell: "echo {{wildcards.i}} > {{output}}"
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["local", "slurm"], default="local")
    parser.add_argument("--n", type=int, default=30, help="number of trivial jobs")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    parallel = 1 if args.backend == "local" else 2
    common = [
        "--executor",
        "hybrid",
        "--jobs",
        str(parallel),
        "--hybrid-default-backend",
        args.backend,
        "--hybrid-local-cores",
        "1",
        "--default-resources",
        "runtime=5",
        "mem_mb=500",
    ]
    native = workflow(SNAKEFILE.format(n=args.n, container=""))
    podman = workflow(SNAKEFILE.format(n=args.n, container=f'container: "{IMAGE}"'))
    print(f"{args.n} trivial jobs on {args.backend}, {parallel} at a time, {args.repeat} round(s)")
    times: dict[str, list[float]] = {"native": [], "podman container": []}
    for round_no in range(args.repeat):  # interleaved, so that drift hits both alike
        for name, wd in (("native", native), ("podman container", podman)):
            seconds = timed_snakemake(wd, common)
            times[name].append(seconds)
            print(f"  round {round_no + 1}: {name:<34} {seconds:8.2f} s", flush=True)
    report(f"{args.n} trivial jobs on {args.backend}", times, baseline="native")
    extra = statistics.median(times["podman container"]) - statistics.median(times["native"])
    print(f"per-job overhead of the container: {extra * parallel / args.n:.3f} s")
    print(f"one bare 'podman run' of the image (median of 10): {bare_podman_run():.3f} s")


def bare_podman_run() -> float:
    """What podman itself costs per container, for comparison."""
    argv = ["podman", "run", "--rm", "--init", "--network=host", IMAGE, "true"]
    seconds = []
    for _ in range(10):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


if __name__ == "__main__":
    main()
