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


def test_snakemake_finds_the_plugin_and_its_flags():
    from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

    from snakemake_executor_hybrid.settings import ExecutorSettings

    plugin = ExecutorPluginRegistry().get_plugin("hybrid")
    assert plugin.settings_cls is ExecutorSettings
    assert plugin.common_settings.non_local_exec  # every non-local rule reaches it
    flags = {info["cliarg"] for info in plugin.get_settings_info()}
    expected = {"--hybrid-routes", "--hybrid-default-backend", "--hybrid-cloud-status-interval"}
    assert expected <= flags
    assert not any("backend-settings" in flag for flag in flags)  # Python API only
