"""Pick the learning rate with the lowest test error."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))  # noqa: F821 (set by Snakemake)
from where import where  # noqa: E402

results = [json.loads(Path(p).read_text()) for p in snakemake.input]  # noqa: F821
best = min(results, key=lambda r: r["test_mse"])
report = {"best_lr": best["lr"], "best_test_mse": best["test_mse"], "runs": results, "ran_on": where()}
Path(snakemake.output[0]).write_text(json.dumps(report, indent=1))  # noqa: F821
print(f"best learning rate {best['lr']} (test MSE {best['test_mse']:.4f})")
