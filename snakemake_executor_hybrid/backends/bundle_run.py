"""The inner process of a bundle: one Snakemake running every member, with events.

    python -m snakemake_executor_hybrid.backends.bundle_run --events FILE [--members FILE] \
        -m snakemake ARGS

runs ``snakemake ARGS`` in this process (the command line a SLURM job's inner
Snakemake gets, with every member as a target job, Snakemake's local executor,
``--cores`` of the allocation and ``--keep-going``) with the members that joined
while the bundle was queued added (``--members``), and appends a line to the events
FILE as each member ends (see bundle_events): succeeded once Snakemake has checked its
outputs, failed when Snakemake reports its error. The events are read off
Snakemake's own log records (a filter that lets every record through), so nothing
of Snakemake's behaviour changes.
"""

import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from .. import compat
from .bundle_events import FAILED, SUCCEEDED, event_line, member_key, take_members


class MemberEvents(logging.Filter):
    """Writes a member's end to the events file when Snakemake logs it."""

    def __init__(self, path: str, kinds: compat.JobLogEvents) -> None:
        super().__init__()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._kinds = kinds
        self._jobs: dict[Any, tuple[str, float]] = {}  # inner jobid -> key, start
        self._done: set[Any] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        event = getattr(record, "event", None)
        try:
            if event == self._kinds.info:
                info = record.__dict__
                key = member_key(str(info["rule_name"]), dict(info.get("wildcards") or {}))
                self._jobs.setdefault(info["jobid"], (key, time.monotonic()))
            elif event == self._kinds.finished:
                self._write(getattr(record, "job_id", None), SUCCEEDED)
            elif event == self._kinds.error:
                self._write(getattr(record, "jobid", None), FAILED)
        except Exception:  # noqa: BLE001 - an event is never worth a failed log call
            pass
        return True

    def _write(self, jobid: Any, state: str) -> None:
        if jobid not in self._jobs or jobid in self._done:
            return
        self._done.add(jobid)
        key, start = self._jobs[jobid]
        os.write(self._fd, event_line(key, state, round(time.monotonic() - start, 3)).encode())


USAGE = (
    "usage: python -m snakemake_executor_hybrid.backends.bundle_run "
    "--events FILE [--members FILE] -m snakemake ARGS..."
)


def split_argv(argv: Sequence[str]) -> tuple[str, str | None, list[str]]:
    """(events file, members file, Snakemake's arguments) from this module's command line."""
    args = list(argv)
    options: dict[str, str] = {}
    while len(args) >= 2 and args[0] in ("--events", "--members"):
        options[args[0]] = args[1]
        args = args[2:]
    if "--events" not in options or args[:2] != ["-m", "snakemake"]:
        raise SystemExit(USAGE)
    return options["--events"], options.get("--members"), args[2:]


def with_members(args: list[str], targets: list[str], temp_files: list[str]) -> list[str]:
    """Snakemake's arguments with more target jobs and unneeded temp files."""
    args = list(args)
    for flag, values in (("--target-jobs", targets), ("--unneeded-temp-files", temp_files)):
        if not values:
            continue
        if flag in args:
            at = args.index(flag) + 1
            while at < len(args) and not args[at].startswith("-"):
                at += 1
            args[at:at] = values
        else:
            args += [flag, *values]
    return args


def main(argv: Sequence[str] | None = None) -> None:
    events, members, args = split_argv(sys.argv[1:] if argv is None else argv)
    if members is not None:
        args = with_members(args, *take_members(members))
    compat.snakemake_logger().addFilter(MemberEvents(events, compat.job_log_events()))
    compat.snakemake_main(args)


if __name__ == "__main__":
    main()
