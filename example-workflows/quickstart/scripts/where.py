"""Where a job ran: the SLURM job id, or 'local'."""

import os
import socket


def where() -> dict:
    return {"host": socket.gethostname(), "slurm_job": os.environ.get("SLURM_JOB_ID", "local")}
