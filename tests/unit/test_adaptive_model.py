"""The request model: fits, model choice, safety margin, retry sizing."""

import csv
import random
from pathlib import Path

import numpy
import pytest

from snakemake_executor_hybrid.adaptive import model
from snakemake_executor_hybrid.adaptive.advisor import to_request
from snakemake_executor_hybrid.adaptive.model import Run
from snakemake_executor_hybrid.backends import slurm_outcome as so

MB = 1_000_000


def linear_runs(n: int, seed: int = 1, noise: float = 0.05) -> list[Run]:
    rng = random.Random(seed)
    runs = []
    for _ in range(n):
        size = rng.uniform(10, 1000) * MB
        runs.append(Run(size, (200 + 2 * size / MB) * rng.uniform(1 - noise, 1 + noise)))
    return runs


@pytest.mark.parametrize("q", [0.0, 0.5, 0.9, 0.95, 1.0])
def test_quantile_interpolates_like_numpy(q):
    values = [5.0, 1.0, 9.0, 3.0, 7.5]
    assert model.quantile(values, q) == pytest.approx(numpy.quantile(values, q))


def test_usage_growing_with_input_is_fitted_in_input_size_and_covers_new_jobs():
    fitted = model.fit(linear_runs(30))
    assert fitted.kind in ("linear", "power")
    new = linear_runs(200, seed=2)
    covered = sum(fitted.predict(r.input_bytes) >= r.used for r in new) / len(new)
    assert covered >= 0.85
    # much less than a constant request for the largest input would hold
    assert fitted.predict(100 * MB) < 0.5 * fitted.predict(1000 * MB)


def test_usage_independent_of_input_is_a_constant_quantile():
    rng = random.Random(3)
    runs = [Run(rng.uniform(1, 1000) * MB, rng.uniform(480, 520)) for _ in range(40)]
    fitted = model.fit(runs)
    assert fitted.kind == "constant"
    assert 500 < fitted.predict(0) <= 520
    assert fitted.describe() == "p95 of past runs"


def test_power_law_growth_is_recognised():
    rng = random.Random(4)
    runs = []
    for _ in range(40):
        size = rng.uniform(1, 2000) * MB
        runs.append(Run(size, 5 * (size / MB) ** 1.5 * rng.uniform(0.95, 1.05)))
    fitted = model.fit(runs)
    assert fitted.kind == "power"
    assert fitted.predict(1500 * MB) >= 5 * 1500**1.5


def test_too_few_distinct_sizes_fall_back_to_the_constant_model():
    runs = [Run(10 * MB, 100), Run(10 * MB, 120), Run(20 * MB, 130), Run(20 * MB, 110)]
    assert model.fit(runs).kind == "constant"
    assert model.fit([Run(0, 42)]).predict(10**12) == 42


def test_a_run_killed_for_memory_counts_as_needing_more_than_it_asked():
    killed = Run(100 * MB, used=310, requested=300, killed=True)
    assert killed.need == 310
    assert Run(100 * MB, used=120, requested=300, killed=True).need == 300


def test_cost_of_a_request_charges_a_failure_twice():
    assert model.cost(150, 100) == 50
    assert model.cost(90, 100) == 190


def test_margin_grows_with_recent_under_predictions_and_is_capped():
    ok = Run(0, 100, requested=120, learned=True)
    miss = Run(0, 130, requested=120, killed=True, learned=True)
    assert model.margin([ok] * 10) == model.BASE_MARGIN
    assert model.margin([ok, miss, ok]) == pytest.approx(model.BASE_MARGIN * model.MARGIN_STEP)
    assert model.margin([miss] * 30) == model.MAX_MARGIN
    # only learned requests count; old misses leave the window
    assert model.margin([Run(0, 130, requested=120, killed=True)] * 5) == model.BASE_MARGIN
    assert model.margin([miss] + [ok] * model.MARGIN_WINDOW) == model.BASE_MARGIN


def test_retry_doubles_the_request_or_covers_what_was_used():
    assert model.retry_request(300, 310) == 600
    assert model.retry_request(300, 679) == pytest.approx(679 * model.USED_HEADROOM)
    assert model.retry_request(300, None) == 600


# -- on recorded runs: bench/learned.py on the project's SLURM (data/adaptive_fixtures.md) --

RECORDED = list(csv.DictReader((Path(__file__).parent / "data" / "adaptive_bench_runs.csv").open()))
STATIC = {"align": 500, "count": 1000}  # what the benchmark's careful user asks for


def recorded(run: str, rule: str) -> list[dict]:
    return [r for r in RECORDED if r["run"] == run and r["rule"] == rule]


@pytest.mark.parametrize("rule", ["align", "count"])
def test_requests_fitted_on_a_training_run_cover_a_later_run_with_little_waste(rule):
    train = [
        Run(float(r["input_bytes"]), float(r["used_mem_mb"])) for r in recorded("training", rule)
    ]
    fitted = model.fit(train)
    assert fitted.kind != "constant"  # usage grows with input size: found
    margin = model.margin(train)
    later = recorded("learned", rule)  # the next run: other inputs' noise
    asked = [to_request("mem_mb", fitted.predict(float(r["input_bytes"])) * margin) for r in later]
    used = [float(r["used_mem_mb"]) for r in later]
    uncovered = sum(a < u for a, u in zip(asked, used, strict=True))
    assert uncovered <= len(later) / 20  # at most one retry per 20 jobs
    waste = sum(max(0.0, a - u) for a, u in zip(asked, used, strict=True))
    assert waste <= 0.4 * sum(STATIC[rule] - u for u in used)


def test_the_requests_learned_in_the_recorded_run_covered_every_job():
    later = [r for r in RECORDED if r["run"] == "learned"]
    assert len(later) == 48 and all(r["state"] == "succeeded" for r in later)
    assert all(float(r["used_mem_mb"]) <= int(r["req_mem_mb"]) for r in later)
    assert all(int(r["req_mem_mb"]) < STATIC[r["rule"]] for r in later)


def test_retry_after_a_recorded_memory_kill():
    # job killed in step 0 (data/adaptive_sacct_usage.txt): --mem=200, MaxRSS 423256K
    usage = so.parse_usage(
        (Path(__file__).parent / "data" / "adaptive_sacct_usage.txt").read_text()
    )
    killed = max(usage.values(), key=lambda u: u.usage.mem_mb or 0).usage
    assert killed.mem_mb == pytest.approx(413.3, abs=0.1)
    assert to_request("mem_mb", model.retry_request(200, killed.mem_mb)) == 520
