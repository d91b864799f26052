"""Requests from past runs: a small model per rule and quantity, pure and deterministic.

What a job of a rule will use (peak memory in MB, or wall seconds) is predicted
from its total input size. Three candidate models, each an upper quantile rather
than a mean (a request must cover the job, not match it on average):

* ``constant``: the q-quantile of past usage, whatever the input;
* ``linear``:   a least-squares line in input size, raised by the q-quantile of
                its residuals;
* ``power``:    the same on log-log scale (usage growing like size**b), raised
                multiplicatively.

As in Sizey (Bader et al., 2024), the model is chosen per rule from how it
would have done: each candidate predicts every past run from the others
(k-fold), and the one with the least expected cost wins, the cost of a run
being the over-request if it was covered, and the whole request plus a rerun
if it was not. Then a safety margin multiplies the prediction; it starts at
``BASE_MARGIN`` and grows with each of the rule's recent under-predictions.

A job killed for memory or time is retried with ``retry_request``: the larger of
the failed request times ``GROWTH`` and what it had used times ``USED_HEADROOM``.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

QUANTILE = 0.95
BASE_MARGIN = 1.1
MARGIN_STEP = 1.1  # the margin is multiplied by this for each recent under-prediction
MAX_MARGIN = 2.0
MARGIN_WINDOW = 20  # recent learned runs looked at for under-predictions
GROWTH = 2.0
USED_HEADROOM = 1.25
MIN_DISTINCT_SIZES = 3  # a fit in input size needs at least this many different sizes


@dataclass(frozen=True)
class Run:
    """One past run of a rule as the model sees it (one quantity)."""

    input_bytes: float
    used: float  # peak MB or wall seconds; for a run killed for it, what it reached
    requested: float | None = None
    killed: bool = False  # killed for exceeding this quantity: it needed more than used
    learned: bool = False  # its request came from a prediction

    @property
    def need(self) -> float:
        """What the run needed at least."""
        if self.killed and self.requested is not None:
            return max(self.used, self.requested)
        return self.used

    @property
    def under_predicted(self) -> bool:
        """A learned request that did not cover the run."""
        return self.learned and (
            self.killed or (self.requested is not None and self.used > self.requested)
        )


@dataclass(frozen=True)
class Fit:
    kind: str  # constant, linear or power
    intercept: float
    slope: float
    offset: float  # added (linear, constant) or log-added (power) quantile of residuals
    runs: int
    quantile: float

    def predict(self, input_bytes: float) -> float:
        x = _scale(input_bytes)
        if self.kind == "power":
            return math.exp(self.intercept + self.slope * math.log1p(x) + self.offset)
        return max(0.0, self.intercept + self.slope * x + self.offset)

    def describe(self) -> str:
        p = f"p{round(self.quantile * 100)}"
        return {
            "constant": f"{p} of past runs",
            "linear": f"{p} linear fit on input size",
            "power": f"{p} power-law fit on input size",
        }[self.kind]


def _scale(input_bytes: float) -> float:
    return max(0.0, float(input_bytes)) / 1e6  # MB: keeps the fits well conditioned


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile with linear interpolation (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("quantile of no values")
    pos = (len(ordered) - 1) * min(1.0, max(0.0, q))
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return my, 0.0
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return my - slope * mx, slope


def _fit_kind(kind: str, runs: Sequence[Run], q: float) -> Fit | None:
    xs = [_scale(r.input_bytes) for r in runs]
    ys = [r.need for r in runs]
    if kind == "constant":
        return Fit("constant", 0.0, 0.0, quantile(ys, q), len(runs), q)
    if len(set(xs)) < MIN_DISTINCT_SIZES:
        return None
    if kind == "linear":
        a, b = _line(xs, ys)
        if b <= 0:
            return None  # no growth with input: the constant model says it better
        residuals = [y - (a + b * x) for x, y in zip(xs, ys, strict=True)]
        return Fit("linear", a, b, quantile(residuals, q), len(runs), q)
    if min(ys) <= 0:
        return None
    lx = [math.log1p(x) for x in xs]
    ly = [math.log(y) for y in ys]
    a, b = _line(lx, ly)
    if b <= 0:
        return None
    residuals = [y - (a + b * x) for x, y in zip(lx, ly, strict=True)]
    return Fit("power", a, b, quantile(residuals, q), len(runs), q)


KINDS = ("constant", "linear", "power")


def cost(predicted: float, need: float) -> float:
    """What a request costs against what the run needed: the unused part if it
    covered the run, else the whole failed request plus a rerun."""
    return predicted - need if predicted >= need else predicted + need


def _cv_cost(kind: str, runs: Sequence[Run], q: float, folds: int) -> float | None:
    total, count = 0.0, 0
    for fold in range(folds):
        train = [r for i, r in enumerate(runs) if i % folds != fold]
        test = [r for i, r in enumerate(runs) if i % folds == fold]
        fitted = _fit_kind(kind, train, q) if train else None
        if fitted is None:
            return None
        for run in test:
            total += cost(fitted.predict(run.input_bytes), run.need)
            count += 1
    return total / count if count else None


def fit(runs: Sequence[Run], q: float = QUANTILE) -> Fit:
    """The candidate with the least cross-validated cost, fitted on all ``runs``."""
    if not runs:
        raise ValueError("fit of no runs")
    folds = min(len(runs), 5)
    best: tuple[float, int, str] | None = None
    for order, kind in enumerate(KINDS):  # ties go to the simpler model
        value = _cv_cost(kind, runs, q, folds) if len(runs) > 1 else 0.0
        if value is not None and (best is None or (value, order) < best[:2]):
            best = (value, order, kind)
    fitted = _fit_kind(best[2], runs, q) if best is not None else None
    return fitted or Fit("constant", 0.0, 0.0, quantile([r.need for r in runs], q), len(runs), q)


def margin(recent: Sequence[Run]) -> float:
    """The safety margin: BASE_MARGIN, times MARGIN_STEP for each under-prediction
    among the last MARGIN_WINDOW learned runs (oldest first), at most MAX_MARGIN."""
    learned = [r for r in recent if r.learned][-MARGIN_WINDOW:]
    misses = sum(r.under_predicted for r in learned)
    return min(MAX_MARGIN, BASE_MARGIN * MARGIN_STEP**misses)


def retry_request(failed_request: float, used: float | None) -> float:
    """The request of a retry after a kill for exceeding ``failed_request``."""
    return max(failed_request * GROWTH, (used or 0.0) * USED_HEADROOM)
