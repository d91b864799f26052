"""Snakemake's own test workflows pass under --executor hybrid wherever they pass under
Snakemake's own executors: every rule local (compared with --executor local), and every
rule on the real SLURM, plainly and bundled (compared with --executor slurm).

Each case is the upstream test function, unchanged, run in a process of its own (see
runner.py). A case that fails under hybrid is run under the reference executor too: if
that fails as well, the case says nothing about the hybrid executor and is skipped with
that reason. Differences that cannot be removed are listed in cases.DIFFERENCES.
"""

import pytest

from tests.conformance import cases, upstream
from tests.conformance.check import Outcome, run_case

pytestmark = [pytest.mark.integration, pytest.mark.conformance]


def upstream_case(case: str) -> None:
    """Skip a case the installed Snakemake's test suite does not have."""
    if not hasattr(upstream.load("tests"), case):
        pytest.skip(f"not in the test suite of Snakemake {upstream.snakemake_version()}")


def check(mode: str, reference: str, case: str) -> None:
    upstream_case(case)
    outcome = run_case(mode, case)
    difference = cases.difference(case, upstream.snakemake_version())
    if outcome.status == "passed":
        assert difference is None, f"{case} passes now; remove it from cases.DIFFERENCES"
        return
    if outcome.status == "skipped":
        pytest.skip(f"{case} skipped itself under {mode}")
    native = run_case(reference, case)
    if native.status != "passed":
        pytest.skip(f"{case} fails under --executor {reference} too ({native.status})")
    if difference is not None:
        pytest.xfail(f"listed difference: {difference}")
    pytest.fail(report(outcome, native))


def report(outcome: Outcome, native: Outcome) -> str:
    return (
        f"{outcome.case}: {outcome.status} under {outcome.mode} after "
        f"{outcome.seconds:.0f} s, passed under {native.mode} in {native.seconds:.0f} s\n"
        f"{outcome.tail}"
    )


@pytest.mark.parametrize("case", cases.LOCAL)
def test_all_rules_local(case: str) -> None:
    check("hybrid", "local", case)


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm")
@pytest.mark.parametrize("case", cases.SLURM)
def test_all_rules_on_slurm(case: str) -> None:
    check("hybrid-slurm", "slurm", case)


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm")
@pytest.mark.parametrize("case", cases.SLURM)
def test_all_rules_on_slurm_bundled(case: str) -> None:
    check("hybrid-bundled", "slurm", case)


def test_the_selection_covers_what_an_executor_must_get_right() -> None:
    assert len(cases.LOCAL) >= 60 and len(cases.SLURM) >= 15
    assert set(cases.SLURM) <= set(cases.LOCAL) | set(cases.SLURM_ONLY)
    for topic, members in cases.TOPICS.items():
        assert set(members) & set(cases.LOCAL), f"no case of {topic} in the selection"
