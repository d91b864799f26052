"""learned() and the advisor answering it: defaults, predictions, retries after kills."""

import functools
import subprocess
import sys

import pytest

from snakemake_executor_hybrid import learned
from snakemake_executor_hybrid.adaptive import learned as learned_module
from snakemake_executor_hybrid.adaptive.advisor import Advisor
from snakemake_executor_hybrid.adaptive.journal import Journal, Record


class Log(list):
    def warning(self, message):
        self.append(message)


def rec(**changes) -> Record:
    values = dict(
        run_id="old", rule="align", wildcards={"s": "x"}, backend="slurm", attempt=1,
        state="succeeded", input_bytes=0, req_mem_mb=1000, req_runtime_min=10,
        used_mem_mb=400.0, used_wall_s=60.0,
    )  # fmt: skip
    return Record(**{**values, **changes})


@pytest.fixture
def history(tmp_path):
    def write(*records):
        path = tmp_path / "history.sqlite"
        j = Journal(path)
        for r in records:
            j.record(r)
        j.close()
        return path

    return write


@pytest.fixture(autouse=True)
def _no_advisor():
    yield
    learned_module.install(None)


def advisor_for(path, rule="align", backend=None, **resources):
    advisor = Advisor(path, Log(), lambda r: backend)
    for name, fn in resources.items():
        advisor.bind(rule, name, fn)
    learned_module.install(advisor)
    return advisor


def test_without_the_hybrid_executor_learned_is_its_default():
    mem = learned(default=2000)
    assert mem({"s": "x"}, [], 1, 1, "align") == 2000
    scaled = learned(default=lambda wildcards, attempt: 1000 * attempt)
    assert scaled({"s": "x"}, [], 1, 3, "align") == 3000
    assert learned()({}, [], 1, 1, "x") is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"min_runs": 1}, "min_runs"), ({"quantile": 1.0}, "quantile"), ({"maximum": 0}, "maximum")],
)
def test_bad_arguments_are_refused_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        learned(default=1, **kwargs)


def test_learned_is_found_behind_snakemakes_unit_wrappers():
    mem = learned(default=1)

    @functools.wraps(mem)
    def wrapper(*args, **kwargs):
        return mem(*args, **kwargs)

    assert learned_module.find(wrapper) is mem and learned_module.find(lambda: 1) is None


def test_importing_learned_imports_nothing_heavy():
    probe = (
        "import sys; from snakemake_executor_hybrid import learned; "
        "heavy = [m for m in ('snakemake', 'numpy', 'sqlite3') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", probe], check=True)


def test_below_the_minimum_the_default_is_used_and_said(history):
    path = history(*[rec() for _ in range(4)])
    mem = learned(default=2000)
    advisor = advisor_for(path, mem_mb=mem)
    assert mem({"s": "y"}, [], 1, 1, "align") == 2000
    why = advisor.decisions("align", {"s": "y"}, 1)["mem_mb"]
    assert why.why == "mem_mb=2000 default (4 of 5 runs needed to learn)" and not why.learned


def test_with_enough_runs_the_request_is_predicted_with_its_margin(history):
    path = history(*[rec(used_mem_mb=400.0 + i, used_wall_s=100.0) for i in range(10)])
    mem, runtime = learned(default=2000), learned(default=60)
    advisor = advisor_for(path, mem_mb=mem, runtime=runtime)
    assert mem({"s": "y"}, [], 1, 1, "align") == 450  # p95 409 * 1.1, up to 10 MB
    assert runtime({"s": "y"}, [], 1, 1, "align") == 2  # 110 s -> 2 min
    decision = advisor.decisions("align", {"s": "y"}, 1)["mem_mb"]
    assert decision.why == "mem_mb=450 learned from 10 runs (p95 of past runs, margin 1.10)"
    # asked again (Snakemake evaluates mem_mb and its conversions): the same answer
    assert mem({"s": "y"}, [], 1, 1, "align") == 450


def test_input_size_drives_the_prediction(history, tmp_path):
    records = [rec(input_bytes=i * 10**6, used_mem_mb=100.0 + i) for i in range(1, 30)]
    path = history(*records)
    small, big = tmp_path / "small", tmp_path / "big"
    small.write_bytes(b"x" * 10**6)
    big.write_bytes(b"x" * 25 * 10**6)
    mem = learned(default=5000)
    advisor_for(path, mem_mb=mem)
    assert mem({"s": "1"}, [str(small)], 1, 1, "align") < mem({"s": "2"}, [str(big)], 1, 1, "align")
    assert mem({"s": "2"}, [str(big)], 1, 1, "align") >= 125


def test_a_job_killed_for_memory_is_retried_with_more(history):
    path = history()
    mem = learned(default=300)
    advisor = advisor_for(path, mem_mb=mem)
    assert mem({"s": "y"}, [], 1, 1, "align") == 300
    advisor.observe(rec(run_id="now", wildcards={"s": "y"}, state="out_of_memory",
                        req_mem_mb=300, used_mem_mb=679.1))  # fmt: skip
    assert mem({"s": "y"}, [], 1, 2, "align") == 850  # 679.1 * 1.25, up to 10 MB
    why = advisor.decisions("align", {"s": "y"}, 2)["mem_mb"].why
    assert why == "mem_mb=850 after attempt 1 was killed for memory (asked 300, used 679)"
    # another job of the rule, or a retry after a failure that was not a kill: no growth
    assert mem({"s": "z"}, [], 1, 2, "align") == 300


def test_a_job_that_timed_out_is_retried_with_a_longer_runtime(history):
    runtime = learned(default=10)
    advisor = advisor_for(history(), runtime=runtime)
    advisor.observe(rec(run_id="now", state="timed_out", req_runtime_min=10, used_wall_s=601.0))
    assert runtime({"s": "x"}, [], 1, 2, "align") == 20


def test_maximum_caps_every_request(history):
    mem = learned(default=300, maximum=500)
    advisor = advisor_for(history(), mem_mb=mem)
    advisor.observe(rec(run_id="now", state="out_of_memory", req_mem_mb=300, used_mem_mb=320.0))
    assert mem({"s": "x"}, [], 1, 2, "align") == 500
    assert "capped at maximum=500" in advisor.decisions("align", {"s": "x"}, 2)["mem_mb"].why


def test_runs_on_the_rules_backend_are_preferred_when_there_are_enough(history):
    slurm = [rec(backend="slurm", used_mem_mb=900.0) for _ in range(6)]
    local = [rec(backend="local", used_mem_mb=100.0) for _ in range(6)]
    path = history(*slurm, *local)
    on_local = learned(default=1)
    advisor_for(path, backend="local", mem_mb=on_local)
    assert on_local({"s": "x"}, [], 1, 1, "align") == 110
    anywhere = learned(default=1)
    advisor_for(path, backend=None, mem_mb=anywhere)
    assert anywhere({"s": "x"}, [], 1, 1, "align") == 990


def test_an_unreadable_journal_means_defaults_and_one_warning(tmp_path):
    path = tmp_path / "history.sqlite"
    path.write_bytes(b"garbage" * 1000)
    mem = learned(default=700)
    advisor = advisor_for(path, mem_mb=mem)
    assert mem({"s": "x"}, [], 1, 1, "align") == 700
    assert mem({"s": "y"}, [], 1, 1, "align") == 700
    assert len(advisor._logger) == 1 and "cannot be read" in advisor._logger[0]
