"""scikit-learn's 8x8 handwritten digits (shipped with it: no download), scaled and split."""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

params, output = snakemake.params, snakemake.output  # noqa: F821 (set by Snakemake)
X, y = load_digits(return_X_y=True)
X = X / 16.0  # pixel intensities 0..16 -> 0..1
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=params.test_size, random_state=params.seed, stratify=y
)
np.savez_compressed(output.train, X=X_train, y=y_train)
np.savez_compressed(output.test, X=X_test, y=y_test)
print(f"{len(y_train)} training and {len(y_test)} test images of 8x8 pixels")
