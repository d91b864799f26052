"""Synthetic regression data: y = 3 x1 - 2 x2 + 0.5 + noise."""

import csv
import random

rng = random.Random(snakemake.params.seed)  # noqa: F821 (set by Snakemake)
rows = []
for _ in range(snakemake.params.samples):  # noqa: F821
    x1, x2 = rng.uniform(-1, 1), rng.uniform(-1, 1)
    rows.append((x1, x2, 3 * x1 - 2 * x2 + 0.5 + rng.gauss(0, 0.1)))
split = int(len(rows) * 0.8)
for path, part in ((snakemake.output.train, rows[:split]), (snakemake.output.test, rows[split:])):  # noqa: F821
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(part)
