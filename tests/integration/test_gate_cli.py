"""snakemake-gate as a person meets it: a wrong directory, look-alike gates, a pipe."""

import subprocess
import sys

from snakemake_human_gate import gate
from snakemake_human_gate.cli import main
from snakemake_human_gate.store import GateStore

GATE_CLI = [sys.executable, "-m", "snakemake_human_gate"]


def test_commands_in_a_directory_without_a_store_say_so_and_make_nothing(tmp_path, capsys):
    nowhere = tmp_path / "not-the-workflow"
    for command in (["list"], ["show", "deploy"], ["approve", "deploy"], ["audit"]):
        assert main(["--dir", str(nowhere), *command]) == 2
        error = capsys.readouterr().err
        assert f"no gate store at {nowhere}: run this in the workflow's directory" in error
    assert not nowhere.exists()  # no empty store that would say "no gates waiting"


def test_list_tells_gates_of_one_rule_apart_by_their_wildcards(tmp_path, capsys):
    store = GateStore(tmp_path / "gates")
    for env in ("staging", "prod"):
        artifact = tmp_path / f"{env}.txt"
        artifact.write_text(env)
        store.ask(
            rule="deploy",
            wildcards={"env": env},
            inputs=[artifact],
            output=tmp_path / f"{env}.json",
            spec=gate("Deploy?"),
        )
    assert main(["--dir", str(store.root), "list"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert "WILDCARDS" in rows[0]
    assert sorted(row.split()[4] for row in rows[1:]) == ["env=prod", "env=staging"]


def test_a_reader_that_stops_early_is_no_error(tmp_path):
    store = GateStore(tmp_path / "gates")
    artifact = tmp_path / "a.txt"
    artifact.write_text("x")
    for i in range(300):  # as --json, several times a pipe's buffer
        wildcards = {"i": str(i)}
        store.ask(rule="r", wildcards=wildcards, inputs=[artifact], output="o", spec=gate("Q?"))
    argv = " ".join([*GATE_CLI, "--dir", str(store.root), "audit", "--json"])
    run = subprocess.run(
        ["bash", "-c", f"{argv} | head -1; echo status ${{PIPESTATUS[0]}}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in run.stderr and "BrokenPipeError" not in run.stderr, run.stderr
    assert run.stdout.startswith("[\n") and "status 141" in run.stdout  # as `git log | head`
