"""Sum the columns of the table; record where this ran (inside the image)."""

import csv
import json
import os
import platform
import sys


def container() -> str | None:
    """The runtime this runs under, from the marks each one leaves; None: native."""
    if os.path.exists("/run/.containerenv"):
        return "podman"
    if os.path.exists("/.dockerenv"):
        return "docker"
    return os.environ.get("APPTAINER_NAME") or os.environ.get("SINGULARITY_NAME")


with open(snakemake.input[0]) as f:  # noqa: F821 (set by Snakemake)
    rows = list(csv.DictReader(f))
summary = {
    "rows": len(rows),
    "sums": {col: sum(float(r[col]) for r in rows) for col in rows[0]},
    "container": container(),
    "os": platform.freedesktop_os_release()["PRETTY_NAME"],
    "python": sys.executable,
    "threads": int(os.environ["OMP_NUM_THREADS"]),
    "slurm_job": os.environ.get("SLURM_JOB_ID"),
}
with open(snakemake.output[0], "w") as f:  # noqa: F821
    json.dump(summary, f, indent=1, sort_keys=True)
    f.write("\n")
