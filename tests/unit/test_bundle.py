"""Bundles of SLURM jobs: which jobs, how many, when, the inner command, member events."""

import logging
import shlex
from types import SimpleNamespace

import pytest
from snakemake_interface_common.exceptions import WorkflowError

from snakemake_executor_hybrid.backends import bundle_events as ev
from snakemake_executor_hybrid.backends import bundle_plan as plan
from snakemake_executor_hybrid.backends import bundle_run
from snakemake_executor_hybrid.settings import ExecutorSettings

# -- which jobs ------------------------------------------------------------------------


def test_patterns_are_rule_names_or_globs():
    assert plan.parse_patterns(None) == ()
    assert plan.parse_patterns(" qc_*, count ,") == ("qc_*", "count")
    assert plan.named("qc_reads", ("qc_*",)) and not plan.named("align", ("qc_*", "count"))


@pytest.mark.parametrize("bad", ["qc=slurm", "a b"])
def test_a_bad_pattern_names_the_flag(bad):
    with pytest.raises(WorkflowError, match="--hybrid-bundle .*'hybrid-bundle'"):
        plan.parse_patterns(bad)


def test_jobs_needing_an_allocation_of_their_own_are_not_bundled():
    assert plan.unfit({"mem_mb": 500, "runtime": 5, "nodes": 1, "tasks": 1}) is None
    assert plan.unfit({"mpi": "srun"}) == "resource mpi='srun'"
    assert plan.unfit({"gpu": 1}) == "resource gpu=1"
    assert plan.unfit({"gres": "gpu:1"}) is not None
    assert plan.unfit({"nodes": 2}) == "resource nodes=2"
    assert plan.unfit({"tasks": 4}) is not None


def test_a_rule_is_short_by_the_median_of_enough_runs():
    assert plan.short([1.0, 2.0, 100.0], 30)
    assert not plan.short([1.0, 2.0], 30)  # too few runs
    assert not plan.short([20.0, 40.0, 50.0], 30)
    assert not plan.short([1.0, 1.0, 1.0], 0)  # turned off


# -- how many ----------------------------------------------------------------------------


def test_without_history_a_bundle_is_sized_by_count():
    s = plan.shape(1, 500, 2, 22800, None, 300, 100)
    assert (s.members, s.at_once, s.cpus, s.mem_mb) == (100, 2, 2, 1000)


def test_with_history_a_bundle_lasts_about_the_target():
    # 10 s jobs, two at a time on 2 CPUs: 30 waves of 2 fill 300 s
    s = plan.shape(1, 500, 2, 22800, 10.0, 300, 100)
    assert s.members == 60 and s.waves(60) == 30
    # jobs longer than the target still form bundles of what runs at once
    assert plan.shape(1, 500, 2, 22800, 900.0, 300, 100).members == 2
    # trivial jobs: capped by the maximum
    assert plan.shape(1, 500, 2, 22800, 0.0, 300, 100).members == 100


def test_members_at_once_fit_the_node_cpus_memory_and_their_threads():
    assert plan.shape(2, 500, 8, None, None, 300, 100).at_once == 4
    assert plan.shape(1, 6000, 8, 16000, None, 300, 100).at_once == 2  # memory
    assert plan.shape(4, 500, 2, None, None, 300, 100).at_once == 1  # too big: alone
    s = plan.shape(1, None, None, None, None, 300, 100)  # nothing known: one CPU
    assert (s.at_once, s.cpus, s.mem_mb) == (1, 1, None)
    assert plan.shape(1, 500, 64, None, None, 300, 3).at_once == 3  # no more than max


def test_a_smaller_bundle_asks_for_what_its_members_can_use():
    s = plan.shape(2, 500, 8, None, None, 300, 100).for_members(3)
    assert (s.at_once, s.cpus, s.mem_mb) == (3, 6, 1500)
    assert plan.runtime_min(5, s.waves(3)) == 5 and plan.runtime_min(None, 2) is None
    assert plan.runtime_min(5, plan.shape(1, 500, 2, None, None, 300, 100).waves(7)) == 20


# -- when --------------------------------------------------------------------------------


def test_a_full_bucket_goes_at_once_and_the_rest_after_the_fill_time():
    c: plan.Collector[str] = plan.Collector(2.0)
    assert c.add("a", "1", 3, now=0.0) == []
    assert c.add("b", "x", 3, now=0.5) == []
    assert c.add("a", "2", 3, now=1.0) == []
    assert c.add("a", "3", 3, now=1.5) == [("a", ["1", "2", "3"])]
    assert c.next_due() == 2.5 and c.due(2.4) == []
    assert c.due(2.5) == [("b", ["x"])] and len(c) == 0 and c.next_due() is None


def test_a_job_never_waits_longer_than_the_fill_time():
    c: plan.Collector[int] = plan.Collector(2.0)
    for i in range(5):
        c.add("k", i, 100, now=float(i) * 0.3)
    assert c.next_due() == 2.0  # from the first job of the bucket
    assert c.due(2.0) == [("k", [0, 1, 2, 3, 4])]
    c.add("k", 9, 100, now=3.0)  # a new bucket
    assert c.drain() == [("k", [9])] and len(c) == 0


def test_with_no_fill_time_every_job_is_due_at_once():
    c: plan.Collector[int] = plan.Collector(0.0)
    c.add("k", 1, 10, now=5.0)
    assert c.due(5.0) == [("k", [1])]


# -- the inner command ---------------------------------------------------------------------


def test_the_inner_command_runs_every_member_in_parallel_without_forced_threads():
    from snakemake_interface_executor_plugins.utils import TargetSpec

    targets = [TargetSpec("qc", {"s": "a,b"}), TargetSpec("qc", {"s": "c"})]
    args = shlex.split(plan.inner_args(targets, "qc", 4, 2, ["t/b.tmp", "t/a.tmp"]))
    assert args[args.index("--target-jobs") + 1 : args.index("--allowed-rules")] == [
        'qc:s="a,b"',
        "qc:s=c",
    ]
    assert args[args.index("--cores") + 1] == "4" and args[args.index("--attempt") + 1] == "2"
    assert "--keep-going" in args and "--force-use-threads" not in args
    assert args[args.index("--unneeded-temp-files") + 1 :] == ["t/a.tmp", "t/b.tmp"]
    assert "--unneeded-temp-files" not in plan.inner_args(targets, "qc", 4, 1)


# -- member events ---------------------------------------------------------------------------


def test_member_keys_ignore_wildcard_order():
    assert ev.member_key("r", {"a": 1, "b": "x"}) == ev.member_key("r", {"b": "x", "a": "1"})
    assert ev.member_key("r", {"a": "1"}) != ev.member_key("s", {"a": "1"})


def test_a_line_being_written_is_read_later(tmp_path):
    path = tmp_path / "events.jsonl"
    reader = ev.EventsReader(str(path))
    assert reader.new_events() == []  # not there yet
    first = ev.event_line("k1", ev.SUCCEEDED, 1.5)
    second = ev.event_line("k2", ev.FAILED, None)
    path.write_text(first + second[:10])
    assert reader.new_events() == [ev.MemberEvent("k1", ev.SUCCEEDED, 1.5)]
    with path.open("a") as f:
        f.write(second[10:] + "garbage\n" + '{"key": "k3", "state": "odd"}\n')
    assert reader.new_events() == [ev.MemberEvent("k2", ev.FAILED, None)]
    assert reader.new_events() == []


def record(**extra):
    rec = logging.LogRecord("snakemake", logging.INFO, __file__, 1, "msg", None, None)
    rec.__dict__.update(extra)
    return rec


def test_the_inner_run_writes_each_member_once_as_it_ends(tmp_path):
    path = tmp_path / "events.jsonl"
    kinds = bundle_run.compat.JobLogEvents("info", "finished", "error")
    events = bundle_run.MemberEvents(str(path), kinds)
    assert events.filter(record(event="info", jobid=3, rule_name="qc", wildcards={"s": "a"}))
    events.filter(record(event="info", jobid=4, rule_name="qc", wildcards={"s": "b"}))
    events.filter(record(event="error", jobid=4))
    events.filter(record(event="error", jobid=4))  # said twice: once in the file
    events.filter(record(event="finished", job_id=3))
    events.filter(record(event="finished", job_id=99))  # not a job it saw start
    assert events.filter(record())  # other records pass untouched
    found, _ = ev.parse_events(path.read_text())
    assert [(e.key, e.state) for e in found] == [
        (ev.member_key("qc", {"s": "b"}), ev.FAILED),
        (ev.member_key("qc", {"s": "a"}), ev.SUCCEEDED),
    ]
    assert all(e.wall_s is not None and e.wall_s >= 0 for e in found)


def test_the_inner_command_line_is_checked():
    argv = ["--events", "e", "--members", "m", "-m", "snakemake", "--cores", "2"]
    assert bundle_run.split_argv(argv) == ("e", "m", ["--cores", "2"])
    assert bundle_run.split_argv(argv[:2] + argv[4:]) == ("e", None, ["--cores", "2"])
    with pytest.raises(SystemExit, match="usage"):
        bundle_run.split_argv(["-m", "snakemake"])


def test_members_that_joined_are_added_to_the_inner_command():
    args = ["--target-jobs", "r:i=1", "r:i=2", "--cores", "2", "--mode", "remote"]
    assert bundle_run.with_members(args, ["r:i=3"], ["t/3"]) == [
        "--target-jobs", "r:i=1", "r:i=2", "r:i=3", "--cores", "2", "--mode", "remote",
        "--unneeded-temp-files", "t/3",
    ]  # fmt: skip
    args = ["--target-jobs", "r:i=1", "--unneeded-temp-files", "t/1", "--cores", "2"]
    assert bundle_run.with_members(args, ["r:i=3"], ["t/3"]) == [
        "--target-jobs", "r:i=1", "r:i=3", "--unneeded-temp-files", "t/1", "t/3", "--cores", "2",
    ]  # fmt: skip
    assert bundle_run.with_members(args, [], []) == args


def test_nothing_joins_a_bundle_once_it_has_started(tmp_path):
    path = str(tmp_path / "b.members")
    assert ev.join(path, "r:i=3", ["t/3"]) and ev.join(path, 'r:s="a,b"', [])
    assert ev.take_members(path) == (["r:i=3", 'r:s="a,b"'], ["t/3"])
    assert not ev.join(path, "r:i=4", [])
    assert ev.take_members(path) == (["r:i=3", 'r:s="a,b"'], ["t/3"])  # unchanged


def test_the_log_events_of_the_installed_snakemake_exist():
    kinds = bundle_run.compat.job_log_events()
    assert len({kinds.info, kinds.finished, kinds.error}) == 3


# -- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "flag"),
    [
        ("bundle_max", 0, "--hybrid-bundle-max"),
        ("bundle_target", 0.0, "--hybrid-bundle-target"),
        ("bundle_fill", -1.0, "--hybrid-bundle-fill"),
        ("bundle_short", -1.0, "--hybrid-bundle-short"),
        ("bundle", "a=b", "--hybrid-bundle"),
    ],
)
def test_bad_bundle_settings_name_their_flag(field, value, flag):
    with pytest.raises(WorkflowError, match=flag):
        ExecutorSettings(**{field: value})


def test_bundle_settings_defaults():
    s = ExecutorSettings()
    assert (s.bundle, s.bundle_fill, s.bundle_max) == (None, 2.0, 100)
    assert 60 <= s.bundle_target <= 600 and s.bundle_short > 0
    assert SimpleNamespace(**vars(s))  # plain values only


def test_the_sbatch_of_a_bundle_asks_for_what_its_members_need_at_once():
    bundle_jobs = pytest.importorskip("snakemake_executor_hybrid.backends.slurm_bundle_jobs")
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command

    resources = {"mem_mb": 500, "runtime": 5, "_cores": 1, "slurm_extra": "--qos=short"}
    first = SimpleNamespace(
        resources=SimpleNamespace(items=resources.items), name="qc", rule=None, threads=1
    )
    request = bundle_jobs.BundleRequest(first, cpus=2, mem_mb=1000, runtime=100)
    params = {
        "run_uuid": "run", "slurm_logfile": "x/%j.log", "comment_str": "bundle_qc_40",
        "account": "-A acct", "partition": "-p main", "workdir": "/w",
    }  # fmt: skip
    call = shlex.split(get_submit_command(request, params))
    assert "--cpus-per-task=2" in call and "--ntasks=1" in call
    assert call[call.index("--mem") + 1] == "1000" and call[call.index("-t") + 1] == "100"
    assert "--qos=short" in call and call[call.index("--job-name") + 1] == "run"


def test_a_bucket_may_be_taken_before_its_fill_time():
    c: plan.Collector[int] = plan.Collector(2.0)
    c.add("k", 1, 10, now=0.0)
    c.add("k", 2, 10, now=0.1)
    assert c.peek("k") == [1, 2] and c.take("k") == [("k", [1, 2])]
    assert c.peek("k") == [] and c.take("k") == [] and c.next_due() is None
