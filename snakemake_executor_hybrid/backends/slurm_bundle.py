"""Bundles on the SLURM backend: several small jobs of one rule in one SLURM job.

Ready jobs of a bundled rule (``--hybrid-bundle``, or short in the run journal)
wait at most ``--hybrid-bundle-fill`` seconds for others with the same resources
and attempt; then one sbatch runs them all through one inner Snakemake
(``bundle_run``) on as many CPUs as the members that fit on a node at once need.
Jobs of its kind that become ready while a bundle waits in SLURM's queue join it
(up to its size, for which its time limit was asked) instead of waiting for a
bundle of their own. Each member is reported to Snakemake when the inner run says
it ended (its events file, read in the backend's status loop); members without an
event when the SLURM job ends fail with the SLURM job's state and log. A bundle of
one is a plain job.
"""

import contextlib
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo
from snakemake_interface_executor_plugins.utils import encode_target_jobs_cli_args

from .. import compat
from . import bundle_plan as plan
from .bundle_events import EventsReader, MemberEvent, join, member_key
from .slurm_bundle_jobs import sbatch

AUX_KEY = "hybrid_bundle"  # SubmittedJobInfo.aux key: the SLURM job id of the bundle


@dataclass
class Bundle:
    slurm_id: str
    rule: str
    log: Path
    events: EventsReader
    members: dict[str, Any]  # member key -> job
    members_file: Path
    capacity: int  # most members (its time limit covers their waves)
    ended: dict[str, MemberEvent] = field(default_factory=dict)
    reported: set[str] = field(default_factory=set)
    failures: int = 0

    def read(self) -> None:
        for event in self.events.new_events():
            if event.key in self.members:
                self.ended.setdefault(event.key, event)

    def done(self) -> bool:
        return len(self.reported) == len(self.members)


def member_cpus(job: Any) -> int:
    cpus = job.resources.get("cpus_per_task")
    return cpus if isinstance(cpus, int) and cpus > 0 else max(1, int(job.threads))


def key_of(job: Any) -> str:
    return member_key(job.rule.name, dict(job.wildcards_dict))


class Bundler:
    """Collects bundled jobs, submits bundles, and tells the status loop of their
    members' ends. ``backend`` is the SLURM backend (its submission pool, sbatch
    options, reports)."""

    def __init__(self, backend: Any, settings: Any, wall_times: Any) -> None:
        self._backend = backend
        self._settings = settings
        self._patterns = plan.parse_patterns(settings.bundle)
        self._wall_times = wall_times  # rule -> past wall seconds of its SLURM jobs
        self._short: dict[str, bool] = {}
        self._shapes: dict[Any, plan.Shape] = {}
        self._collector: plan.Collector[Any] = plan.Collector(settings.bundle_fill)
        self._cond = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # bundles and open
        self.bundles: dict[str, Bundle] = {}
        self.open: dict[Any, Bundle] = {}  # request key -> queued bundle that may grow
        workdir = Path(backend.workflow.workdir_init)
        self._events_dir = workdir / ".snakemake" / "hybrid" / "bundles" / backend.run_uuid

    # -- which jobs ---------------------------------------------------------------------

    def _bundled_rule(self, rule: str) -> bool:
        if plan.named(rule, self._patterns):
            return True
        if rule not in self._short:
            threshold = self._settings.bundle_short
            self._short[rule] = threshold > 0 and plan.short(self._wall_times(rule), threshold)
            if self._short[rule]:
                self._backend.logger.info(
                    f"hybrid: rule {rule} is bundled on SLURM: its past jobs took at most "
                    f"{threshold:g} s (median; --hybrid-bundle-short)"
                )
        return self._short[rule]

    def key(self, job: Any) -> tuple[Any, ...] | None:
        """Jobs with equal keys may share a bundle; None: this job runs alone."""
        if job.is_group() or not self._bundled_rule(job.rule.name):
            return None
        resources = dict(job.resources.items())
        if plan.unfit(resources) is not None:
            return None
        request = tuple(sorted((k, repr(v)) for k, v in resources.items()))
        return (job.rule.name, int(job.attempt), member_cpus(job), request)

    def _shape(self, key: tuple[Any, ...], job: Any) -> plan.Shape:
        if key not in self._shapes:
            limits = self._backend.partition_limits(job)
            walls = self._wall_times(job.rule.name)
            median = statistics.median(walls) if len(walls) >= plan.MIN_HISTORY_RUNS else None
            mem = job.resources.get("mem_mb")
            self._shapes[key] = plan.shape(
                member_cpus(job),
                mem if isinstance(mem, int) and not job.resources.get("mem_mb_per_cpu") else None,
                limits.cpus if limits else None,
                limits.mem_mb if limits else None,
                median,
                self._settings.bundle_target,
                self._settings.bundle_max,
            )
        return self._shapes[key]

    # -- collecting ---------------------------------------------------------------------

    def take(self, jobs: list[Any]) -> list[Any]:
        """Hold the jobs that go into bundles; return the others."""
        rest: list[Any] = []
        full: list[plan.Batch[Any]] = []
        added: dict[Any, str] = {}
        for job in jobs:
            key = self.key(job)
            if key is None:
                rest.append(job)
                continue
            limit = self._shape(key, job).members
            self._backend.run_job_pre(job)
            if self._join(key, job):
                continue
            with self._cond:
                full += self._collector.add(key, job, limit, time.monotonic())
                self._cond.notify()
            added[key] = job.rule.name
        # a bundle holding every job its rule has still to run need not wait
        for kind, rule in added.items():
            with self._cond:
                waiting = self._collector.peek(kind)
                if waiting and not self._coming(rule, waiting):
                    full += self._collector.take(kind)
        for kind, members in full:
            self._submit(kind, members)
        if self._thread is None and len(self._collector):
            self._thread = threading.Thread(target=self._fill, name="hybrid-bundle", daemon=True)
            self._thread.start()
        return rest

    def _join(self, key: Any, job: Any) -> bool:
        """Add ``job`` to the queued bundle of its kind, if there is one with room."""
        with self._lock:
            bundle = self.open.get(key)
            if bundle is None or len(bundle.members) >= bundle.capacity:
                return False
            target = encode_target_jobs_cli_args(job.get_target_spec())[0]
            temp = [str(f) for f in self._backend.workflow.dag.get_unneeded_temp_files(job)]
            if not join(str(bundle.members_file), target, temp):
                del self.open[key]  # it has started
                return False
            bundle.members[key_of(job)] = job
        self._backend.report_job_submission(
            SubmittedJobInfo(
                job, external_jobid=bundle.slurm_id,
                aux={"slurm_logfile": bundle.log, AUX_KEY: bundle.slurm_id},
            )
        )  # fmt: skip
        self._backend.logger.info(
            f"hybrid: job {job.jobid} joins bundle SLURM job {bundle.slurm_id} (queued; "
            f"{len(bundle.members)} of at most {bundle.capacity} jobs)"
        )
        return True

    def _coming(self, rule: str, members: list[Any]) -> int:
        """Jobs of ``rule`` still to run that are neither ``members`` nor in a bundle."""
        try:
            planned = sum(
                1 for j in compat.needrun_jobs(self._backend.workflow) if j.rule.name == rule
            )
        except RuntimeError:  # the DAG changed while counting
            return 0
        with self._lock:
            held = sum(
                len(b.members) - len(b.reported) for b in self.bundles.values() if b.rule == rule
            )
        return max(0, planned - held - len(members))

    def _fill(self) -> None:
        """Submit the bundles whose fill time is up."""
        while True:
            with self._cond:
                while not self._stopped:
                    due = self._collector.next_due()
                    if due is not None and due <= time.monotonic():
                        break
                    self._cond.wait(None if due is None else due - time.monotonic())
                if self._stopped:
                    return
                ready = self._collector.due(time.monotonic())
            for key, members in ready:
                self._submit(key, members)

    def stop(self) -> list[Any]:
        """Stop collecting; the jobs still held (never submitted)."""
        with self._cond:
            self._stopped = True
            held = [job for _, members in self._collector.drain() for job in members]
            self._cond.notify()
        return held

    def _submit(self, key: Any, members: list[Any]) -> None:
        pool = self._backend._job_submission_executor
        try:
            if len(members) == 1:
                pool.submit(self._backend.run_job, members[0])
            else:
                pool.submit(self.submit_bundle, key, members)
        except RuntimeError:  # the pool is shut down: the run is being cancelled
            for job in members:
                self._backend._report_job_error_threadsafe(
                    SubmittedJobInfo(job), "cancelled before its bundle was submitted"
                )

    # -- submitting (in a submission thread) -------------------------------------------------

    def submit_bundle(self, key: Any, members: list[Any]) -> None:
        try:
            self._sbatch(key, members)
        except Exception as e:  # noqa: BLE001 - report, as the plugin does, per job
            for job in members:
                self._backend._report_job_error_threadsafe(
                    SubmittedJobInfo(job), f"bundle submission failed: {e}"
                )

    def _sbatch(self, key: Any, members: list[Any]) -> None:
        backend, first = self._backend, members[0]
        shape = self._shape(key, first)
        capacity = min(shape.members, len(members) + self._coming(first.name, members))
        shape = shape.for_members(capacity)
        runtime = first.resources.get("runtime")
        runtime = plan.runtime_min(
            runtime if isinstance(runtime, int) else None, shape.waves(capacity)
        )
        self._events_dir.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        events = self._events_dir / f"{name}.jsonl"
        members_file = self._events_dir / f"{name}.members"
        members_file.touch()
        submitted = sbatch(backend, members, shape, runtime, events, members_file)
        if submitted is None:
            return
        slurm_id, log = submitted
        bundle = Bundle(
            slurm_id, first.name, log, EventsReader(str(events)),
            {key_of(job): job for job in members}, members_file, capacity,
        )  # fmt: skip
        with self._lock:
            self.bundles[slurm_id] = bundle
            if capacity > len(members):
                self.open[key] = bundle
        for job in members:
            backend._report_job_submission_threadsafe(
                SubmittedJobInfo(job, external_jobid=slurm_id,
                                 aux={"slurm_logfile": log, AUX_KEY: slurm_id})
            )  # fmt: skip
        mem = f", {shape.mem_mb} MB" if shape.mem_mb else ""
        more = f", room for {capacity}" if capacity > len(members) else ""
        backend.logger.info(
            f"hybrid: bundle SLURM job {slurm_id} (rule {first.name}, {len(members)} jobs, "
            f"{shape.cpus} CPUs{mem}, {shape.at_once} at once{more}; log: {log}): jobs "
            + ", ".join(str(job.jobid) for job in members)
        )

    # -- status ------------------------------------------------------------------------------

    def bundle_of(self, job_info: Any) -> Bundle | None:
        slurm_id = (job_info.aux or {}).get(AUX_KEY)
        with self._lock:
            return self.bundles.get(slurm_id) if slurm_id is not None else None

    def read_events(self, active: list[Any]) -> None:
        """Read the new events of every bundle with members still active."""
        for bundle in {id(b): b for b in map(self.bundle_of, active) if b}.values():
            with self._lock:
                bundle.read()

    def started(self, slurm_id: str) -> None:
        """SLURM started the bundle: nothing joins it any more."""
        with self._lock:
            for key, bundle in list(self.open.items()):
                if bundle.slurm_id == slurm_id:
                    del self.open[key]

    def ended(self, job_info: Any) -> MemberEvent | None:
        bundle = self.bundle_of(job_info)
        return bundle.ended.get(key_of(job_info.job)) if bundle else None

    def reported(self, job_info: Any, ok: bool, keep_logs: bool) -> None:
        """A member was reported; when it was the last one, clean up after the bundle."""
        bundle = self.bundle_of(job_info)
        if bundle is None:
            return
        with self._lock:
            bundle.reported.add(key_of(job_info.job))
            bundle.failures += 0 if ok else 1
            if not bundle.done():
                return
            del self.bundles[bundle.slurm_id]
            self.open = {k: b for k, b in self.open.items() if b is not bundle}
        with contextlib.suppress(OSError):
            Path(bundle.events.path).unlink(missing_ok=True)
            bundle.members_file.unlink(missing_ok=True)
        if bundle.failures == 0 and not keep_logs:
            with contextlib.suppress(OSError):
                bundle.log.unlink(missing_ok=True)
