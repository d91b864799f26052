"""The ai-oversight example end to end: play-human decides both gates through the CLI."""

import importlib.util
import json
import os
import pwd
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.integration.gatehelp import audit, gate_cli

EXAMPLE = REPO / "example-workflows" / "ai-oversight"
OUTPUTS = (".snakemake", "data", "results", "models", "gates", "release", "__pycache__")
USER = pwd.getpwuid(os.geteuid()).pw_name


@pytest.fixture(autouse=True)
def example_dependencies():
    missing = [m for m in ("sklearn", "matplotlib") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.fail(
            f"the ai-oversight example needs {' and '.join(missing)}: pip install '.[examples]'",
            pytrace=False,
        )


def play_human(wd: Path, **env: str) -> str:
    """Run play-human with this interpreter's snakemake and snakemake-gate first on PATH."""
    if not wd.exists():
        shutil.copytree(EXAMPLE, wd, ignore=shutil.ignore_patterns(*OUTPUTS))
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PROFILE", "RETUNE_LR", "SNAKEMAKE_GATE_DIR")
    }
    path = os.pathsep.join([str(Path(sys.executable).parent), base.get("PATH", "")])
    run = subprocess.run(
        [str(wd / "play-human")],
        cwd=wd,
        env={**base, "PATH": path, **env},
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    return output


def read(wd: Path, path: str) -> dict:
    return json.loads((wd / path).read_text())


def check_audit(wd: Path) -> None:
    """The hash chain is intact and each of the two gates was asked exactly once."""
    store = wd / ".snakemake" / "gates"
    verify = gate_cli(store, "audit", "--verify")
    assert verify.returncode == 0 and "audit log intact" in verify.stdout, verify.stdout
    asked = Counter(e["gate"].rsplit("-", 1)[0] for e in audit(store) if e["event"] == "asked")
    assert asked == {"review_pilot": 1, "signoff": 1}


def test_approved_pilot_trains_with_its_lr_and_is_released(tmp_path):
    wd = tmp_path / "ai-oversight"
    output = play_human(wd)
    assert "Every remaining job waits on a human (1 gate(s))" in output

    release = read(wd, "release/RELEASE.json")
    review, signoff = release["decisions"]["review_pilot"], release["decisions"]["signoff"]
    assert (review["choice"], review["fields"], review["by"]) == ("approve", {"lr": 0.01}, [USER])
    assert (signoff["choice"], signoff["by"]) == ("approve", [USER])
    assert signoff["comment"] and signoff["at"]
    assert (wd / "release/model.joblib").stat().st_size > 0

    full = read(wd, "results/full/metrics.json")
    assert (full["lr"], full["review"], full["ran_on"]) == (0.01, "approve", "local")
    assert read(wd, "results/pilot/metrics.json")["lr"] == 0.01
    assert release["lr"] == 0.01 and release["test_accuracy"] > 0.8
    check_audit(wd)

    # a second time: nothing to do, nothing asked or decided again
    again = play_human(wd)
    assert again.count("Nothing to be done") == 3
    check_audit(wd)


def test_retuned_pilot_trains_with_the_reviewers_lr(tmp_path):
    wd = tmp_path / "ai-oversight"
    play_human(wd, RETUNE_LR="0.05")
    full = read(wd, "results/full/metrics.json")
    assert (full["lr"], full["review"]) == (0.05, "retune")
    assert read(wd, "results/pilot/metrics.json")["lr"] == 0.01
    release = read(wd, "release/RELEASE.json")
    assert release["lr"] == 0.05
    assert release["decisions"]["review_pilot"]["choice"] == "retune"
    assert release["decisions"]["review_pilot"]["fields"] == {"lr": 0.05}
    check_audit(wd)


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm")
def test_slurm_profile_trains_on_slurm(tmp_path):
    wd = tmp_path / "ai-oversight"
    output = play_human(wd, PROFILE="slurm")
    assert "(train_full) -> slurm [route 'train_full=slurm' of --hybrid-routes]" in output
    job = read(wd, "results/full/metrics.json")["ran_on"]
    assert job.isdigit(), f"train_full ran on {job!r}, not on SLURM"
    partition = subprocess.run(
        ["sacct", "-X", "--noheader", "--format=Partition", "-j", job],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert partition == "gpu"
    assert read(wd, "results/pilot/metrics.json")["ran_on"] == "local"
    assert read(wd, "release/RELEASE.json")["decisions"]["signoff"]["choice"] == "approve"
    check_audit(wd)
