"""Outputs a job stored in the default storage itself are not uploaded again.

Snakemake's main process uploads a finished job's storage outputs (e.g. S3) from
their local copies. A job that ran in a Snakemake of its own (a cloud job, a SLURM
job, a local group job) has stored them already, and a cloud job has no local
copy. Between a backend reporting such a job's success and Snakemake having
handled it, its storage outputs are checked in storage and not uploaded; then they
are ordinary again, so a job that needs one later retrieves it (once).
"""

import threading
from typing import Any

from . import compat


class StoredOutputs:
    def __init__(self) -> None:
        self._held: dict[Any, list[Any]] = {}
        self._lock = threading.Lock()

    def hold(self, job: Any) -> None:
        """``job`` stored its outputs itself; call just before reporting its success."""
        files = compat.storage_outputs(job)
        if not files:
            return
        compat.check_in_storage(files, True)
        with self._lock:
            self._held[job] = files

    def release(self, job: Any) -> None:
        """Snakemake has handled ``job`` (or given up on it)."""
        with self._lock:
            files = self._held.pop(job, [])
        compat.check_in_storage(files, False)
