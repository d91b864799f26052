import pytest

from snakemake_executor_hybrid.states import JobState


@pytest.mark.parametrize("state", list(JobState))
def test_final_and_ok_are_consistent(state):
    if state.ok:
        assert state.final
    assert state.final == (state not in (JobState.QUEUED, JobState.RUNNING))


def test_only_succeeded_is_ok():
    assert [s for s in JobState if s.ok] == [JobState.SUCCEEDED]
