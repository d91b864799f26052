"""Answers learned() resources during a run, from the journal and this run's jobs.

For a job's attempt the answer is, in order:

1. a retry after the previous attempt of the same job was killed for exceeding this
   very request (memory: OUT_OF_MEMORY; runtime: TIMEOUT): ``model.retry_request``
   of what it asked and what it used, or more if the model now says more;
2. with at least ``min_runs`` successful past runs of the rule: the model's
   prediction for the job's input size times the rule's safety margin;
3. otherwise the learned() default.

Past runs are the rule's rows in the journal (read once per run) and this run's
finished jobs (so a long run learns as it goes). When the rule's backend is
fixed and it has enough runs there, only those count: a SLURM job's memory
includes the Snakemake it runs in, a local one's does not.

Each answer is made once per job and attempt and remembered, with why.
"""

import json
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import journal, model
from .learned import Learned

HISTORY_LIMIT = 500  # most recent runs of a rule the model looks at
MEMORY, RUNTIME = "mem_mb", "runtime"
LEARNABLE = (MEMORY, RUNTIME)
KILLED_STATE = {MEMORY: "out_of_memory", RUNTIME: "timed_out"}
WHAT = {MEMORY: "memory", RUNTIME: "time"}


@dataclass(frozen=True)
class Decision:
    name: str
    value: int | None
    how: str  # "default", or how it was learned (model.Fit.describe(), "retry")
    why: str  # for the log: "mem_mb=1350 learned from 23 runs (p95 ..., margin 1.15)"
    runs: int = 0
    raw: float | None = None  # the model's prediction before the margin (MB or seconds)
    margin: float | None = None

    @property
    def learned(self) -> bool:
        return self.how != "default"

    def as_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "how": self.how,
            "runs": self.runs,
            "raw": None if self.raw is None else round(self.raw, 1),
            "margin": None if self.margin is None else round(self.margin, 3),
        }


def wildcards_key(wildcards: Any) -> str:
    return json.dumps({str(k): str(v) for k, v in dict(wildcards or {}).items()}, sort_keys=True)


def input_bytes(files: Any) -> int:
    total = 0
    for path in files or ():
        try:
            total += os.path.getsize(str(path))
        except OSError:
            continue
    return total


def used(record: journal.Record, name: str) -> float | None:
    """What the record's job used of quantity ``name`` (MB, or seconds)."""
    return record.used_mem_mb if name == MEMORY else record.used_wall_s


def requested(record: journal.Record, name: str) -> float | None:
    if name == MEMORY:
        return None if record.req_mem_mb is None else float(record.req_mem_mb)
    return None if record.req_runtime_min is None else record.req_runtime_min * 60.0


def as_run(record: journal.Record, name: str) -> model.Run | None:
    """The model's view of a journal row, or None if it says nothing about ``name``."""
    value = used(record, name)
    killed = record.state == KILLED_STATE[name]
    if killed and value is None:
        value = requested(record, name)  # it needed more than that
    if value is None or (record.state != "succeeded" and not killed):
        return None
    learned = bool(
        record.learned and record.learned.get(name, {}).get("how", "default") != "default"
    )
    return model.Run(
        float(record.input_bytes or 0), value, requested(record, name), killed, learned
    )


def to_request(name: str, amount: float) -> int:
    """MB rounded up to 10, or seconds rounded up to whole minutes (at least 1)."""
    # (rounded first: 100 * 1.1 is 110.00000000000001, not a reason for 120)
    if name == MEMORY:
        return max(10, math.ceil(round(amount / 10, 6)) * 10)
    return max(1, math.ceil(round(amount / 60, 6)))


def from_request(name: str, value: float) -> float:
    return value if name == MEMORY else value * 60.0


def predict(
    runs: list[model.Run], name: str, size: float, min_runs: int, quantile: float
) -> Decision | None:
    """The learned request for input ``size`` from past ``runs``; None with fewer than
    ``min_runs`` successful ones."""
    if sum(not r.killed for r in runs) < min_runs:
        return None
    fitted = model.fit(runs, quantile)
    margin = model.margin(runs)
    raw = fitted.predict(size)
    value = to_request(name, raw * margin)
    return Decision(
        name, value, fitted.describe(),
        f"{name}={value} learned from {len(runs)} runs ({fitted.describe()}, margin {margin:.2f})",
        len(runs), raw, margin,
    )  # fmt: skip


def runs_of(
    records: list[journal.Record], name: str, backend: str | None, min_runs: int
) -> list[model.Run]:
    """The model's runs of one rule: those on ``backend`` if it has ``min_runs``
    successful ones (a SLURM job's memory includes its Snakemake, a local one's
    does not), else all."""
    records = records[-HISTORY_LIMIT:]
    if backend is not None:
        here = [r for r in records if r.backend == backend]
        if sum(r.state == "succeeded" for r in here) >= min_runs:
            records = here
    return [run for run in (as_run(r, name) for r in records) if run is not None]


class Advisor:
    def __init__(
        self,
        path: Path,
        logger: Any,
        backend_of: Callable[[str], str | None] = lambda rule: None,
    ) -> None:
        self.path = path
        self._logger = logger
        self._backend_of = backend_of
        self._bound: dict[tuple[str, int], str] = {}  # (rule, id(learned)) -> resource
        self._stored: dict[str, list[journal.Record]] = {}  # rule -> journal rows
        self._this_run: dict[str, list[journal.Record]] = {}  # rule -> rows of this run
        self._decided: dict[tuple[str, str, int], dict[str, Decision]] = {}
        self._lock = threading.RLock()
        self._said: set[str] = set()

    # -- binding (at start-up) ------------------------------------------------------

    def bind(self, rule: str, name: str, learned: Learned) -> None:
        self._bound[(rule, id(learned))] = name

    def knows(self, rule: str, learned: Learned) -> bool:
        return (rule, id(learned)) in self._bound

    # -- answers --------------------------------------------------------------------

    def request(
        self, learned: Learned, rule: str, wildcards: Any, input: Any, threads: int, attempt: int
    ) -> int | None:
        name = self._bound[(rule, id(learned))]
        key = (rule, wildcards_key(wildcards), int(attempt))
        with self._lock:
            decided = self._decided.setdefault(key, {})
            if name not in decided:
                decided[name] = self._decide(learned, name, key, wildcards, input, threads)
            return decided[name].value

    def decisions(self, rule: str, wildcards: Any, attempt: int) -> dict[str, Decision]:
        """What learned() answered for this job's attempt (empty if it was not asked)."""
        with self._lock:
            return dict(self._decided.get((rule, wildcards_key(wildcards), int(attempt)), {}))

    def _decide(
        self,
        learned: Learned,
        name: str,
        key: tuple[str, str, int],
        wildcards: Any,
        input: Any,
        threads: int,
    ) -> Decision:
        rule, wc, attempt = key
        decision = self._first_try(
            learned, name, rule, input_bytes(input), wildcards, input, threads
        )
        if attempt > 1:
            decision = self._after_kill(learned, name, rule, wc, attempt, decision)
        if learned.maximum is not None and (decision.value or 0) > learned.maximum:
            decision = Decision(
                name, learned.maximum, decision.how,
                f"{decision.why}, capped at maximum={learned.maximum}",
                decision.runs, decision.raw, decision.margin,
            )  # fmt: skip
        return decision

    def _first_try(
        self,
        learned: Learned,
        name: str,
        rule: str,
        size: int,
        wildcards: Any,
        input: Any,
        threads: int,
    ) -> Decision:
        runs = self._runs(rule, name, learned.min_runs)
        found = predict(runs, name, size, learned.min_runs, learned.quantile)
        if found is None:
            value = learned.default_value(wildcards, input, threads, 1)
            ok = sum(not r.killed for r in runs)
            return Decision(
                name, value, "default",
                f"{name}={value} default ({ok} of {learned.min_runs} runs needed to learn)",
            )  # fmt: skip
        return found

    def _after_kill(
        self, learned: Learned, name: str, rule: str, wc: str, attempt: int, first: Decision
    ) -> Decision:
        previous = self._previous_attempt(rule, wc, attempt)
        if previous is None or previous.state != KILLED_STATE[name]:
            return first
        asked = requested(previous, name)
        took = used(previous, name)
        if asked is None:
            if took is None:
                return first
            asked = took
        amount = max(model.retry_request(asked, took), from_request(name, first.value or 0))
        value = to_request(name, amount)
        took_text = "" if took is None else f", used {round(took)}"
        return Decision(
            name, value, "retry",
            f"{name}={value} after attempt {attempt - 1} was killed for {WHAT[name]} "
            f"(asked {to_request(name, asked)}{took_text})",
            first.runs, amount, None,
        )  # fmt: skip

    def _previous_attempt(self, rule: str, wc: str, attempt: int) -> journal.Record | None:
        with self._lock:
            rows = self._this_run.get(rule, [])
        same = [
            r for r in rows
            if wildcards_key(r.wildcards) == wc and r.attempt == attempt - 1
            and r.state != "failed_over"
        ]  # fmt: skip
        return same[-1] if same else None

    # -- history --------------------------------------------------------------------

    def observe(self, record: journal.Record) -> None:
        """A job of this run ended (its row is on its way to the journal)."""
        with self._lock:
            self._this_run.setdefault(record.rule, []).append(record)

    def _records(self, rule: str) -> list[journal.Record]:
        with self._lock:
            if rule not in self._stored:
                try:
                    stored = journal.read(self.path, "rule = ?", (rule,))
                except Exception as e:  # noqa: BLE001 - a journal problem never stops a run
                    stored = []
                    if "read" not in self._said:
                        self._said.add("read")
                        self._logger.warning(
                            f"hybrid: the run journal {self.path} cannot be read ({e}); "
                            "learned() requests use their defaults meanwhile."
                        )
                self._stored[rule] = stored
            return self._stored[rule] + self._this_run.get(rule, [])

    def _runs(self, rule: str, name: str, min_runs: int) -> list[model.Run]:
        return runs_of(self._records(rule), name, self._backend_of(rule), min_runs)
