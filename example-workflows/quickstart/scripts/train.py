"""Linear regression by full-batch gradient descent; records the loss curve."""

import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))  # noqa: F821 (set by Snakemake)
from where import where  # noqa: E402

lr = float(snakemake.wildcards.lr)  # noqa: F821
with open(snakemake.input[0]) as f:  # noqa: F821
    rows = [tuple(map(float, row)) for row in csv.reader(f)]
w1 = w2 = b = 0.0
losses = []
for _ in range(snakemake.params.epochs):  # noqa: F821
    g1 = g2 = gb = loss = 0.0
    for x1, x2, y in rows:
        err = w1 * x1 + w2 * x2 + b - y
        loss += err * err
        g1, g2, gb = g1 + err * x1, g2 + err * x2, gb + err
    n = len(rows)
    w1, w2, b = w1 - lr * 2 * g1 / n, w2 - lr * 2 * g2 / n, b - lr * 2 * gb / n
    losses.append(loss / n)
model = {"lr": lr, "weights": [w1, w2], "bias": b, "loss_curve": losses, "ran_on": where()}
Path(snakemake.output[0]).write_text(json.dumps(model, indent=1))  # noqa: F821
