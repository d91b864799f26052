"""A small neural network trained epoch by epoch; records the training loss of each epoch.

Used by 'pilot' (a subset, metrics and plot) and 'train_full' (all data, also the model).
"""

import json
import os

import joblib
import matplotlib
import numpy as np
from sklearn.metrics import accuracy_score, log_loss
from sklearn.neural_network import MLPClassifier

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

params, output = snakemake.params, snakemake.output  # noqa: F821 (set by Snakemake)
data = np.load(snakemake.input.data)  # noqa: F821
X, y = data["X"][: params.samples], data["y"][: params.samples]
lr = float(params.lr)
classes = np.arange(10)

model = MLPClassifier(
    hidden_layer_sizes=(32,), solver="sgd", learning_rate_init=lr, random_state=params.seed
)
losses = []
for _ in range(params.epochs):
    model.partial_fit(X, y, classes=classes)
    proba = np.nan_to_num(model.predict_proba(X), nan=1 / len(classes))  # a diverged run
    losses.append(round(float(log_loss(y, proba, labels=classes)), 5))

metrics = {
    "lr": lr,
    "epochs": params.epochs,
    "images": len(y),
    "loss": losses,
    "train_accuracy": round(float(accuracy_score(y, model.predict(X))), 4),
    "ran_on": os.environ.get("SLURM_JOB_ID", "local"),  # the SLURM job id, or 'local'
}
if params.get("choice"):
    metrics["review"] = params.choice  # 'approve' or 'retune'
with open(output.metrics, "w") as f:
    json.dump(metrics, f, indent=1)
if output.get("model"):
    joblib.dump(model, output.model)

fig, ax = plt.subplots(figsize=(6, 4))
chance = np.log(len(classes))  # the loss of a model that guesses
ax.plot(range(1, len(losses) + 1), losses, marker="o", label="training loss")
ax.axhline(chance, color="grey", linestyle="--", label="guessing (ln 10)")
ax.set_title(f"{params.title}: training loss (lr={lr:g}, {len(y)} images)")
ax.set_xlabel("epoch")
ax.set_ylabel("log loss on the training images")
ax.set_ylim(0, 1.1 * max(*losses, chance))
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(output.plot, dpi=100)
print(f"lr={lr:g}: loss {losses[0]:.3f} -> {losses[-1]:.3f} over {len(losses)} epochs")
