"""The test suite of the installed Snakemake, fetched once from its sdist and cached.

``pip download --no-binary :all: --no-deps snakemake==VERSION`` brings the sdist;
its ``tests/`` directory is unpacked as the package ``snakemake_tests`` under
``$SNAKEMAKE_HYBRID_CACHE`` (default ``~/.cache/snakemake-hybrid``), one folder
per version, so that the upstream test functions import as they do upstream
(``from .common import run``) without clashing with this project's ``tests``.
"""

import importlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path
from types import ModuleType

PACKAGE = "snakemake_tests"


def cache_root() -> Path:
    default = Path.home() / ".cache" / "snakemake-hybrid"
    return Path(os.environ.get("SNAKEMAKE_HYBRID_CACHE", default))


def snakemake_version() -> str:
    return version("snakemake")


def tests_dir(snakemake: str | None = None) -> Path:
    """The unpacked upstream ``tests`` package of ``snakemake`` (default: installed)."""
    snakemake = snakemake or snakemake_version()
    target = cache_root() / "upstream" / snakemake
    package = target / PACKAGE
    if (package / "common.py").is_file():
        return package
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-binary",
                ":all:",
                "--no-deps",
                f"snakemake=={snakemake}",
                "-d",
                tmp,
            ],
            check=True,
            stdin=subprocess.DEVNULL,
        )
        (sdist,) = Path(tmp).glob("snakemake-*.tar.gz")
        prefix = f"{sdist.name[: -len('.tar.gz')]}/tests/"
        unpacked = Path(tmp) / "unpacked"
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
            tar.extractall(unpacked, members=members, filter="data")
        shutil.move(unpacked / prefix, package)  # atomic enough: one rename
    return package


def load(module: str = "tests", snakemake: str | None = None) -> ModuleType:
    """Import an upstream test module (e.g. ``tests`` for tests/tests.py)."""
    package = tests_dir(snakemake)
    root = str(package.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module(f"{PACKAGE}.{module}")
