"""The status thread's sleep ends as soon as Snakemake shuts down."""

import asyncio
import threading
import time
from types import SimpleNamespace

import pytest

slurm = pytest.importorskip("snakemake_executor_hybrid.backends.slurm")


def test_sleep_lasts_the_interval_while_running():
    fake = SimpleNamespace(wait=True, _status_interval=0.3)
    start = time.monotonic()
    asyncio.run(slurm.SlurmBackend.sleep(fake))
    assert 0.25 <= time.monotonic() - start < 2


def test_sleep_ends_promptly_on_shutdown():
    fake = SimpleNamespace(wait=True, _status_interval=60)
    threading.Timer(0.2, lambda: setattr(fake, "wait", False)).start()
    start = time.monotonic()
    asyncio.run(slurm.SlurmBackend.sleep(fake))
    assert time.monotonic() - start < 2  # not the 60 s interval
