"""Fixtures of the gate server's tests."""

from collections.abc import Iterator

import pytest

from snakemake_human_gate.store import GateStore
from tests.integration.gateserver import MAX_BODY, Server, live_server


@pytest.fixture
def server(tmp_path) -> Iterator[Server]:
    """A live server (a thread) over a fresh store with tokens, a sender and links."""
    root = tmp_path / "work"
    root.mkdir()
    store_dir = root / "gates"
    GateStore(store_dir)
    with live_server(store_dir, max_body=MAX_BODY, public_url="https://gates.example.org") as url:
        yield Server(root, url)
