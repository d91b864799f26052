"""Human gates for Snakemake: rules that wait for a person's decision.

Importing this package is cheap (Snakefiles import it in every job process).
"""

from .api import decided, decision, gate
from .record import Decision
from .spec import GateSpec

__all__ = ["Decision", "GateSpec", "decided", "decision", "gate"]
