"""Failover: a job that cannot run on a backend moves on to the next of its chain.

A rule routed to ``slurm/local`` goes to SLURM first. If SLURM cannot run the
job at all (it can never start there, sbatch refuses it, its node fails to boot
or fails under it, SLURM does not answer), the backend reports an outcome marked
``infrastructure``; the executor then hands the *same* job to the next backend
instead of reporting a failure to Snakemake, so Snakemake counts no failed
attempt and the job keeps its attempt number and resources. A failure of the
job's own command is reported as usual (and retried by ``--retries``, each
attempt starting again at the chain's first backend).

The hand-over runs in one thread of its own: backends report from their status
threads, which must not wait for another backend's submission.
"""

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..backends.base import Outcome
from ..routing import Choice


class Failover:
    def __init__(self, resubmit: Callable[[str, Any], None]) -> None:
        self._resubmit = resubmit
        self._placed: dict[int, Choice] = {}  # id(job) -> its routing choice
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._stopped = False

    def placed(self, job: Any, choice: Choice) -> None:
        """``job`` (a new attempt) goes to the first backend of ``choice``."""
        if len(choice.chain) > 1:
            with self._lock:
                self._placed[id(job)] = choice

    def next_backend(self, job: Any, backend: str, outcome: Outcome) -> str | None:
        """Where ``job`` goes after ending with ``outcome`` on ``backend`` (None: nowhere,
        report the outcome); forgets the job when it goes nowhere."""
        with self._lock:
            choice = self._placed.get(id(job))
            after = choice.after(backend) if choice and backend in choice.chain else None
            if not outcome.infrastructure or after is None or self._stopped:
                self._placed.pop(id(job), None)
                return None
            return after

    def move(self, job: Any, backend: str) -> None:
        """Submit ``job`` to ``backend`` from the failover thread."""
        with self._lock:
            if self._stopped:
                return
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hybrid-failover")
            self._pool.submit(self._resubmit, backend, job)

    def stop(self) -> None:
        """Move nothing more (cancel, shutdown); waits for a hand-over in progress."""
        with self._lock:
            self._stopped = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
