"""SLURM status parsing, on output captured from a real slurmdbd (SLURM 22.05)."""

from pathlib import Path

import pytest

from snakemake_executor_hybrid.backends import slurm_status as st
from snakemake_executor_hybrid.states import JobState

# Real sacct output, see data/sacct_states.md for how each job was made.
CAPTURED = (Path(__file__).parent / "data" / "sacct_states.txt").read_text()
# Real output in the exact format the backend asks for (with NodeList).
CAPTURED_WITH_NODES = "8|COMPLETED|0:0|None|vm\n14|CANCELLED by 0|0:0|None|vm\n"


def states(text=CAPTURED, requeue=False):
    return {k: r.state(requeue) for k, r in st.parse_sacct(text).items()}


def test_each_captured_state_maps_to_one_model_state():
    assert states() == {
        "10": JobState.SUCCEEDED,
        "11": JobState.FAILED,
        "12": JobState.FAILED,
        "13": JobState.TIMED_OUT,
        "14": JobState.CANCELLED,
        "18": JobState.RUNNING,
        "19": JobState.QUEUED,
    }
    assert states(CAPTURED_WITH_NODES) == {"8": JobState.SUCCEEDED, "14": JobState.CANCELLED}


def test_states_this_node_cannot_produce_follow_the_table():
    # Not captured (a single node cannot fail or run out of memory on demand):
    # same format, states from the sacct manual.
    text = "17|NODE_FAIL|1:0|None|n1\n21|OUT_OF_MEMORY|0:125|None|n1\n22|BOOT_FAIL|0:0|None|n1\n"
    assert states(text) == {
        "17": JobState.NODE_FAILED,
        "21": JobState.OUT_OF_MEMORY,
        "22": JobState.FAILED,
    }


def test_cancelled_by_uid_is_final_not_running():
    # snakemake-executor-plugin-slurm 2.8.0 compares the raw string with
    # "CANCELLED" and waits for "CANCELLED by 0" forever.
    record = st.parse_sacct("14|CANCELLED by 0|0:0|None|vm\n")["14"]
    assert record.native_state == "CANCELLED"
    assert record.state().final and not record.state().ok


def test_requeue_keeps_node_fail_and_preemption_pending():
    text = "17|NODE_FAIL|1:0|None|vm\n18|PREEMPTED|0:0|None|vm\n"
    assert set(states(text, requeue=True).values()) == {JobState.QUEUED}
    assert states(text)["18"] is JobState.FAILED


def test_unknown_state_is_treated_as_in_progress():
    assert states("9|SOME_NEW_STATE|0:0|None|vm\n")["9"] is JobState.RUNNING


def test_last_line_of_a_job_wins_and_blank_lines_are_ignored():
    text = "5|FAILED|1:0|None|vm\n\n5|COMPLETED|0:0|None|vm\n"
    assert states(text) == {"5": JobState.SUCCEEDED}


def test_short_lines_from_other_formats_are_padded():
    record = st.parse_sacct(CAPTURED)["14"]
    assert record.native_state == "CANCELLED" and record.reason == "None" and record.nodes == ""


ARRAY_SACCT = (Path(__file__).parent / "data" / "sacct_array.txt").read_text()
ARRAY_SQUEUE = (Path(__file__).parent / "data" / "squeue_array.txt").read_text()


@pytest.mark.parametrize(
    ("parse", "output"), [(st.parse_sacct, ARRAY_SACCT), (st.parse_squeue, ARRAY_SQUEUE)]
)
def test_array_tasks_have_their_own_records_and_pending_ranges_expand(parse, output):
    records = parse(output)
    state = {task: st.lookup(records, task).state() for task in ("32_1", "32_3", "33_2")}
    assert state == {"32_1": JobState.SUCCEEDED, "32_3": JobState.FAILED, "33_2": JobState.QUEUED}
    assert st.lookup(records, "33_4") is None  # outside the pending range
    assert st.lookup(records, "32") is None  # a task never reads its parent's record


def test_expand_job_ids_reads_ranges_lists_and_throttles():
    assert list(st.expand_job_ids("7_[1-3,9%2]")) == ["7_1", "7_2", "7_3", "7_9"]
    assert list(st.expand_job_ids("7_4")) == ["7_4"]
    assert list(st.expand_job_ids("12")) == ["12"]


def test_sacct_asks_for_array_parents_so_pending_tasks_are_listed():
    (argv,) = st.sacct_argvs(["33_2", "33_3", "40"])
    assert argv[-1] == "--jobs=33,33_2,33_3,40"


def test_squeue_status_is_one_call_by_run_name_with_finished_jobs():
    argv = st.squeue_status_argv("run-uuid")
    assert argv[0] == "squeue" and "--name=run-uuid" in argv and "--states=all" in argv


def test_sacct_argv_is_one_batched_call_with_explicit_fields():
    argvs = st.sacct_argvs(["3", "1", "2", "1"])
    assert argvs == [
        [
            "sacct",
            "--allocations",
            "--parsable2",
            "--noheader",
            "--format=JobID,State,ExitCode,Reason,NodeList,Partition",
            "--jobs=1,2,3",
        ]
    ]


def test_sacct_argv_is_chunked_for_many_jobs():
    ids = [str(i) for i in range(st.SACCT_CHUNK * 2 + 1)]
    argvs = st.sacct_argvs(ids)
    assert len(argvs) == 3
    polled = [j for argv in argvs for j in argv[-1].removeprefix("--jobs=").split(",")]
    assert sorted(polled, key=int) == ids


def test_failure_message_names_state_exit_reason_node_and_log():
    record = st.parse_sacct("11|FAILED|3:0|None|vm\n")["11"]
    message = st.failure_message(record, "/logs/11.log")
    assert message == (
        "SLURM job 11 ended FAILED on vm (exit code 3; reason: none given). "
        "SLURM log: /logs/11.log\n"
    )


def test_failure_message_shows_signal_and_reason():
    record = st.parse_sacct("12|OUT_OF_MEMORY|0:9|OutOfMemory|n1\n")["12"]
    message = st.failure_message(record, "x.log")
    assert "OUT_OF_MEMORY" in message and "signal 9" in message and "OutOfMemory" in message


def test_cancel_and_queue_commands_select_the_run_by_name():
    assert st.scancel_argv("run-1") == ["scancel", "--name=run-1"]
    assert st.scancel_argv("run-1", clusters=True)[-1] == "--clusters=all"
    assert st.squeue_argv("run-1") == ["squeue", "--noheader", "--format=%i", "--name=run-1"]
    assert st.default_account_argv("alice")[-2:] == ["alice", "format=DefaultAccount"]
