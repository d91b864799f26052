"""The plugin Snakemake finds is the installed distribution (CI: non-editable)."""

import os
import subprocess
import sys

import pytest


@pytest.mark.skipif(
    os.environ.get("HYBRID_EXPECT_INSTALLED") != "1",
    reason="set HYBRID_EXPECT_INSTALLED=1 after a non-editable 'pip install .'",
)
def test_snakemake_discovers_the_installed_plugin(tmp_path):
    (tmp_path / "Snakefile").write_text(
        'rule a:\n    output: "a.txt"\n    shell: "touch {output}"\n'
    )
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import snakemake_executor_plugin_hybrid as p, snakemake_executor_hybrid as h;"
            "print(p.__file__); print(h.__file__)",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all("site-packages" in path for path in where), where
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "--executor", "hybrid", "--jobs", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "a.txt").exists()
    assert "-> local [--hybrid-default-backend]" in run.stderr
