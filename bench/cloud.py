"""Cloud dispatch: N independent trivial jobs on AWS Batch through Snakemake's own
aws-batch executor and through the hybrid executor, against the same emulated AWS.

    eval "$(scripts/cloud/up --print-env)"
    python bench/cloud.py --n 20 --repeat 3

Both variants run the same jobs in the same image with --jobs N, side by side
(a b a b ...). Ratio = median wall time / median of `--executor aws-batch`
(goal <= 0.7). Per-job overhead = (wall time - one job's wall time) / N is not
meaningful with N jobs at once; the table gives wall seconds per job instead.
A second table times a mixed local -> cloud -> local chain and counts what crossed
between this machine and S3 (Snakemake's "Retrieving"/"Storing" lines).
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
import uuid

from common import report, side_by_side, workflow

JOBS = """
rule all:
    input: expand("out/{{i}}.txt", i=range({n}))

rule trivial:
    output: "out/{{i}}.txt"
    resources: executor="aws-batch"
    shell: "echo {{wildcards.i}} > {{output}}"
"""

CHAIN = """
rule all:
    input: "summary.txt"

rule make:
    output: "data.txt"
    resources: executor="local"
    shell: "head -c 1000000 /dev/zero | tr '\\\\0' x > {{output}}"

rule cloud:
    input: "data.txt"
    output: "counted.txt"
    resources: executor="aws-batch"
    shell: "wc -c < {{input}} > {{output}}"

rule summary:
    input: "counted.txt", "data.txt"
    output: "summary.txt"
    resources: executor="local"
    shell: "cat {{input[0]}} > {{output}}"
"""


def env(name: str) -> str:
    try:
        return os.environ[name]
    except KeyError:
        raise SystemExit(f'{name} is not set: eval "$(scripts/cloud/up --print-env)"') from None


def storage(prefix: str) -> list[str]:
    return [
        "--default-storage-provider", "s3",
        "--default-storage-prefix", f"s3://{env('HYBRID_TEST_BUCKET')}/{prefix}",
        "--envvars", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
    ]  # fmt: skip


def batch() -> list[str]:
    return [
        "--aws-batch-region", env("AWS_DEFAULT_REGION"),
        "--aws-batch-job-queue", env("HYBRID_TEST_BATCH_QUEUE"),
        "--aws-batch-job-role", env("HYBRID_TEST_BATCH_ROLE"),
        "--container-image", env("HYBRID_TEST_IMAGE"),
    ]  # fmt: skip


def crossings(wd, args: list[str], prefix: str) -> tuple[float, list[str], int]:
    """Seconds, files moved and bytes moved between here and S3 in one run."""
    import boto3

    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=wd, capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(run.stderr[-3000:])
    pattern = rf"^(Retrieving from|Storing in) storage: s3://[^/]+/{prefix}/(\S+)$"
    moved = re.findall(pattern, run.stdout + run.stderr, re.M)
    s3, bucket = boto3.client("s3"), env("HYBRID_TEST_BUCKET")
    size = sum(s3.head_object(Bucket=bucket, Key=f"{prefix}/{key}")["ContentLength"]
               for _, key in moved)  # fmt: skip
    return seconds, [f"{verb.split()[0].lower()} {key}" for verb, key in moved], size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    wd = workflow(JOBS.format(n=args.n))
    run = uuid.uuid4().hex[:6]
    variants = {
        "snakemake --executor aws-batch": [
            "--executor", "aws-batch", "--jobs", str(args.n), *batch(),
            *storage(f"bench-{run}-plugin"),
        ],
        "snakemake --executor hybrid (aws-batch)": [
            "--executor", "hybrid", "--jobs", str(args.n), *batch(),
            *storage(f"bench-{run}-hybrid"),
        ],
    }  # fmt: skip
    print(f"{args.n} trivial jobs on AWS Batch (emulated), {args.repeat} round(s) in {wd}")
    times = side_by_side(wd, variants, args.repeat)
    report(f"{args.n} trivial jobs on AWS Batch", times, baseline=next(iter(variants)))
    for name, values in times.items():
        print(f"{name:<36} {statistics.median(values) / args.n:6.2f} wall s per job")

    chain = workflow(CHAIN.format())
    prefix = f"bench-{run}-chain"
    print("\nlocal -> cloud -> local chain (a 1 MB file), hybrid:")
    seconds, moved, size = crossings(
        chain, ["--executor", "hybrid", "--jobs", "4", *batch(), *storage(prefix)], prefix
    )
    print(f"  {seconds:.1f} s; {len(moved)} transfer(s) here <-> S3, {size} bytes: {moved}")


if __name__ == "__main__":
    main()
