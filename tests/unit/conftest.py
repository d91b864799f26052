"""Fixtures of the store's unit tests."""

import pytest

from snakemake_human_gate.store import GateStore


@pytest.fixture
def store(tmp_path):
    """A fresh private store."""
    return GateStore(tmp_path / "gates")


@pytest.fixture
def artifact(tmp_path):
    """A gate's input file."""
    path = tmp_path / "metrics.json"
    path.write_text('{"loss": 0.1}')
    return path
