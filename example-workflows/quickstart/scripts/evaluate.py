"""Mean squared error of one model on the held-out data."""

import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))  # noqa: F821 (set by Snakemake)
from where import where  # noqa: E402

model = json.loads(Path(snakemake.input.model).read_text())  # noqa: F821
(w1, w2), b = model["weights"], model["bias"]
with open(snakemake.input.data) as f:  # noqa: F821
    rows = [tuple(map(float, row)) for row in csv.reader(f)]
mse = sum((w1 * x1 + w2 * x2 + b - y) ** 2 for x1, x2, y in rows) / len(rows)
result = {"lr": model["lr"], "test_mse": mse, "ran_on": where()}
Path(snakemake.output[0]).write_text(json.dumps(result, indent=1))  # noqa: F821
