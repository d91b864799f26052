"""Test accuracy and confusion matrix of the fully trained model."""

import json
import os

import joblib
import matplotlib
import numpy as np
from sklearn.metrics import ConfusionMatrixDisplay, accuracy_score, confusion_matrix

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

inp, output = snakemake.input, snakemake.output  # noqa: F821 (set by Snakemake)
model = joblib.load(inp.model)
test = np.load(inp.test)
X, y = test["X"], test["y"]
predicted = model.predict(X)
accuracy = float(accuracy_score(y, predicted))
matrix = confusion_matrix(y, predicted, labels=range(10))
with open(inp.metrics) as f:
    trained = json.load(f)

report = {
    "test_accuracy": round(accuracy, 4),
    "test_images": len(y),
    "recall_per_digit": {d: round(float(matrix[d, d] / matrix[d].sum()), 3) for d in range(10)},
    "lr": trained["lr"],
    "epochs": trained["epochs"],
    "trained_on": trained["ran_on"],
    "evaluated_on": os.environ.get("SLURM_JOB_ID", "local"),
}
with open(output.report, "w") as f:
    json.dump(report, f, indent=1)

fig, ax = plt.subplots(figsize=(6, 5.5))
ConfusionMatrixDisplay(matrix, display_labels=range(10)).plot(ax=ax, cmap="Blues", colorbar=False)
ax.set_title(f"Confusion matrix: {len(y)} test images, accuracy {accuracy:.1%}")
ax.set_xlabel("predicted digit")
ax.set_ylabel("true digit")
fig.tight_layout()
fig.savefig(output.confusion, dpi=100)
print(f"test accuracy {accuracy:.1%}")
