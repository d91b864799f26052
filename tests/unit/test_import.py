"""Snakemake imports every installed plugin in every job process: keep that free."""

import subprocess
import sys

PROBE = """
import socket, subprocess, sys

def forbidden(*args, **kwargs):
    raise AssertionError(f"work at import time: {args!r}")

subprocess.Popen.__init__ = forbidden
socket.socket.connect = forbidden
import snakemake_executor_plugin_hybrid as plugin
assert plugin.Executor and plugin.ExecutorSettings and plugin.common_settings
heavy = [m for m in (
    "snakemake_executor_plugin_slurm",  # runs sacct/sinfo at import
    "snakemake_executor_hybrid.backends.slurm",
    "snakemake_executor_hybrid.backends.local",
    "snakemake.api",
) if m in sys.modules]
assert not heavy, f"imported at plugin import: {heavy}"
"""


def test_plugin_import_starts_no_process_opens_no_socket_loads_no_backend():
    run = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_common_settings_hand_non_local_rules_to_the_plugin():
    from snakemake_executor_hybrid.settings import common_settings

    assert common_settings.non_local_exec
    assert not common_settings.implies_no_shared_fs
    assert common_settings.init_seconds_before_status_checks == 0
