"""``learned()``: a resource whose value comes from the rule's past runs.

In a Snakefile::

    from snakemake_executor_hybrid import learned

    rule align:
        resources: mem_mb=learned(default=2000), runtime=learned(default=60)

``learned(...)`` returns a resource function; Snakemake calls it for each job
and attempt like any other. Under the hybrid executor, which installs an
advisor for the run (``advisor.py``), it answers from the run journal; anywhere
else (another executor) it answers ``default``. A Snakemake spawned for a job
(a SLURM job, a group job) does not call it: the hybrid executor passes the
value it made on that Snakemake's command line.

Importing this module imports nothing beyond the standard library.
"""

import inspect
from collections.abc import Callable
from typing import Any, Protocol

DEFAULT_MIN_RUNS = 5


class Advisor(Protocol):
    def knows(self, rule: str, learned: "Learned") -> bool: ...

    def request(
        self, learned: "Learned", rule: str, wildcards: Any, input: Any, threads: int, attempt: int
    ) -> int | None: ...


_advisor: Advisor | None = None


def install(advisor: Advisor | None) -> None:
    """Make ``advisor`` answer every learned() resource of this process (None: defaults)."""
    global _advisor
    _advisor = advisor


class Learned:
    """The resource function made by :func:`learned` (its arguments are read-only)."""

    def __init__(
        self,
        default: int | Callable[..., int] | None,
        min_runs: int,
        quantile: float,
        maximum: int | None,
    ) -> None:
        if not isinstance(min_runs, int) or min_runs < 2:
            raise ValueError(f"learned(min_runs={min_runs!r}): needs an integer of at least 2")
        if not 0.5 <= quantile < 1:
            raise ValueError(f"learned(quantile={quantile!r}): needs a number in [0.5, 1)")
        if maximum is not None and maximum < 1:
            raise ValueError(f"learned(maximum={maximum!r}): needs a positive number")
        self.default = default
        self.min_runs = min_runs
        self.quantile = quantile
        self.maximum = maximum

    def __repr__(self) -> str:
        return (
            f"learned(default={self.default!r}, min_runs={self.min_runs}, "
            f"quantile={self.quantile}, maximum={self.maximum})"
        )

    # The parameters are those Snakemake passes to resource functions by name.
    def __call__(
        self, wildcards: Any, input: Any = None, threads: int = 1, attempt: int = 1,
        rulename: str = "",
    ) -> int | None:  # fmt: skip
        advisor = _advisor
        if advisor is not None and advisor.knows(rulename, self):
            return advisor.request(self, rulename, wildcards, input, threads, attempt)
        return self.default_value(wildcards, input, threads, attempt)

    def default_value(self, wildcards: Any, input: Any, threads: int, attempt: int) -> int | None:
        """``default``, called like a resource function when it is one."""
        if not callable(self.default):
            return self.default
        offered = {"input": input, "threads": threads, "attempt": attempt}
        params = inspect.signature(self.default).parameters
        takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
        kwargs = {k: v for k, v in offered.items() if takes_all or k in params}
        return self.default(wildcards, **kwargs)


def learned(
    default: int | Callable[..., int] | None = None,
    *,
    min_runs: int = DEFAULT_MIN_RUNS,
    quantile: float = 0.95,
    maximum: int | None = None,
) -> Learned:
    """A ``mem_mb`` (``mem``, ``mem_mib``) or ``runtime`` request learned from past runs.

    default:  the request while the rule has fewer than ``min_runs`` successful runs
              in the journal (a number, or a function like any resource function);
    min_runs: successful past runs of the rule needed before predicting;
    quantile: the share of past runs a prediction (before the safety margin) covers;
    maximum:  an upper bound for any request made (retries included).
    """
    return Learned(default, min_runs, quantile, maximum)


def find(value: Any) -> "Learned | None":
    """The Learned behind a resource's evaluator (Snakemake wraps some in converters)."""
    seen = 0
    while value is not None and seen < 10:
        if isinstance(value, Learned):
            return value
        value = getattr(value, "__wrapped__", None)
        seen += 1
    return None
