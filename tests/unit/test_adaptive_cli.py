"""snakemake-hybrid over a journal: history, show, predict, plain and JSON."""

import json

import pytest

from snakemake_executor_hybrid.adaptive import cli
from snakemake_executor_hybrid.adaptive.journal import Journal, Record


def rec(**changes) -> Record:
    values = dict(
        run_id="r", rule="align", wildcards={"s": "a"}, backend="slurm", attempt=1,
        state="succeeded", input_bytes=0, req_mem_mb=1000, req_runtime_min=10,
        used_mem_mb=400.0, used_wall_s=10.0, ended=1_700_000_000.0,
    )  # fmt: skip
    return Record(**{**values, **changes})


@pytest.fixture
def path(tmp_path):
    path = tmp_path / "history.sqlite"
    j = Journal(path)
    for i in range(6):
        j.record(rec(wildcards={"s": str(i)}, used_mem_mb=400.0 + 10 * i))
    j.record(rec(state="out_of_memory", req_mem_mb=300, used_mem_mb=310.0, reason="killed"))
    j.record(rec(state="failed_over", reason="never starts", used_mem_mb=None, used_wall_s=None))
    j.record(rec(rule="plot", backend="local", req_mem_mb=None, used_mem_mb=50.0))
    j.close()
    return path


def run(capsys, *argv):
    assert cli.main([*argv]) == 0
    return capsys.readouterr().out


def test_history_summarises_each_rule(path, capsys):
    data = json.loads(run(capsys, "--history", str(path), "--json", "history"))
    align = data[0]
    assert [r["rule"] for r in data] == ["align", "plot"]
    assert (align["runs"], align["succeeded"], align["failures"]) == (8, 6, 1)
    assert (align["out_of_memory"], align["failed_over"]) == (1, 1)
    assert align["mem_mb"] == {"median": 425.0, "p95": 447.5}
    # (1000 - used) * 10 s for each success, (300 - 310 -> 0) for the kill
    assert align["waste_mb_s"] == pytest.approx(sum((1000 - 400 - 10 * i) * 10 for i in range(6)))
    text = run(capsys, "--history", str(path), "history")
    assert text.splitlines()[1].split()[:6] == ["align", "8", "1", "1", "0", "1"]


def test_show_lists_a_rules_attempts(path, capsys):
    text = run(capsys, "--history", str(path), "show", "align", "--last", "2")
    lines = text.splitlines()
    assert len(lines) == 3 and "out_of_memory" in lines[1] and "failed_over" in lines[2]
    rows = json.loads(run(capsys, "--history", str(path), "--json", "show", "plot"))
    assert rows[0]["wildcards"] == {"s": "a"} and rows[0]["backend"] == "local"


def test_predict_says_what_learned_would_request(path, capsys):
    data = json.loads(
        run(capsys, "--history", str(path), "--json", "predict", "align", "--input-size", "0")
    )
    # p95 of the six runs (400..450) and the kill (needed more than 310): 447 * 1.1 -> 500
    assert data["mem_mb"]["value"] == 500
    assert data["runtime"]["value"] == 1
    text = run(capsys, "--history", str(path), "predict", "plot", "--input-size", "10")
    assert "not enough runs to learn (1 of 5 needed)" in text


def test_an_unreadable_journal_is_an_error_naming_it(tmp_path, capsys):
    bad = tmp_path / "history.sqlite"
    bad.write_bytes(b"nope" * 1000)
    assert cli.main(["--history", str(bad), "history"]) == 1
    assert f"cannot read the journal {bad}" in capsys.readouterr().err
