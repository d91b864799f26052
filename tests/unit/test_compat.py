"""The one module that touches Snakemake's internals: its start-up check and the
--set-resources argument it builds for spawned jobs."""

import base64
from types import SimpleNamespace

import pytest
from snakemake.resources import Resources
from snakemake_interface_common.exceptions import WorkflowError

from snakemake_executor_hybrid import compat


def test_the_installed_snakemake_has_everything_used():
    compat.check()


def test_a_missing_internal_stops_the_run_naming_the_supported_versions(monkeypatch):
    missing = ("snakemake.rules", "Rule.no_such_method")
    monkeypatch.setattr(compat, "_REQUIRED", (*compat._REQUIRED, missing))
    with pytest.raises(WorkflowError) as err:
        compat.check()
    message = str(err.value)
    assert "supports Snakemake 9.16.3 or newer 9.x" in message
    assert "snakemake.rules.Rule.no_such_method" in message
    assert "pip install 'snakemake>=9.16.3,<10'" in message


def decoded(arg: str) -> list[str]:
    flag, *items = arg.split()
    assert flag == "--set-resources"
    return [base64.b64decode(i.removeprefix("base64//")).decode() for i in items]


def workflow_with(overrides: dict[str, list[str]]) -> SimpleNamespace:
    parsed = {
        rule: Resources.parse(items, allow_expressions=True) for rule, items in overrides.items()
    }
    return SimpleNamespace(resource_settings=SimpleNamespace(_parsed_overwrite_resources=parsed))


def test_set_resources_keeps_the_users_items_and_ours_win():
    workflow = workflow_with({"a": ["mem_mb=100", "shell_exec='/bin/bash'"], "b": ["scratch=5"]})
    items = decoded(compat.set_resources_arg(workflow, {"a": {"shell_exec": "/x/l.sh"}}))
    assert sorted(items) == ["a:mem_mb=100", "a:shell_exec='/x/l.sh'", "b:scratch=5"]


def test_set_resources_is_empty_without_items():
    assert compat.set_resources_arg(workflow_with({}), {}) == ""


def test_a_decided_param_is_snakemakes_placeholder_until_the_gate_decides(tmp_path):
    from snakemake_human_gate.api import decided

    param = decided(str(tmp_path / "gates/review_{run}.json"), "lr")
    value = param(SimpleNamespace(items=lambda: [("run", "a")]))
    assert compat.is_tbd(value)
