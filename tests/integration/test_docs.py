"""The docs' examples are real: quoted files match, shown commands run."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(
    r"(?:<!-- test: run in (?P<dir>\S+)(?: \((?P<needs>[a-z, ]+)\))? -->\n)?"
    r"```[a-z]*\n(?P<body>.*?)```",
    re.S,
)


def blocks():
    for doc in DOCS:
        for match in FENCE.finditer(doc.read_text()):
            yield doc, match


QUOTED = [(d, m) for d, m in blocks() if m["body"].startswith("# file: ")]
RUN = [(d, m) for d, m in blocks() if m["dir"]]


def test_docs_have_tested_examples():
    assert QUOTED and RUN


@pytest.mark.parametrize(("doc", "match"), QUOTED, ids=lambda v: getattr(v, "name", ""))
def test_quoted_file_matches_the_repository(doc, match):
    first, _, quoted = match["body"].partition("\n")
    path = REPO / first.removeprefix("# file: ").strip()
    assert quoted == path.read_text(), f"{doc.name} quotes {path} out of date"


@pytest.mark.parametrize(("doc", "match"), RUN, ids=lambda v: getattr(v, "name", ""))
def test_console_commands_run(doc, match, tmp_path, request):
    extra_env: dict[str, str] = {}
    for fixture in (match["needs"] or "").split(","):  # e.g. (slurm, podman)
        if fixture.strip():
            value = request.getfixturevalue(fixture.strip())
            if fixture.strip() == "cloud":
                extra_env.update(value)  # what `scripts/cloud/up --print-env` exports
    if "slurm" in (match["needs"] or ""):
        request.node.add_marker("slurm")  # a failure reports SLURM's queue and node
    wd = tmp_path / "wd"
    outputs = shutil.ignore_patterns(".snakemake", "results", "data", "models", "metrics")
    shutil.copytree(REPO / match["dir"], wd, ignore=outputs)
    bindir = Path(sys.executable).parent
    for command, expected in commands(match["body"]):
        try:
            run = subprocess.run(
                ["bash", "-c", command],
                cwd=wd,
                capture_output=True,
                text=True,
                timeout=600,
                env={
                    "PATH": f"{bindir}:/usr/local/bin:/usr/bin:/bin",
                    "HOME": str(tmp_path),
                    **extra_env,
                },
            )
        except subprocess.TimeoutExpired as e:
            stderr = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else ""
            pytest.fail(f"{doc.name}: {command} did not finish in {e.timeout} s\n{stderr[-3000:]}")
        assert run.returncode == 0, f"{doc.name}: {command}\n{run.stderr[-3000:]}"
        for line in expected:  # what the doc shows the command printing
            assert line in run.stdout + run.stderr, f"{doc.name}: {command} did not print {line!r}"


def commands(body: str) -> list[tuple[str, list[str]]]:
    """``$ COMMAND`` lines of a console block, each with the output lines shown under it."""
    found: list[tuple[str, list[str]]] = []
    for line in body.splitlines():
        if line.startswith("$ "):
            found.append((line[2:], []))
        elif line.strip() and found:
            found[-1][1].append(line.strip())
    return found


def test_shown_output_lines_belong_to_the_command_above():
    body = "$ a\n  out 1\n\n$ b\n$ c\nout 2\n"
    assert commands(body) == [("a", ["out 1"]), ("b", []), ("c", ["out 2"])]
