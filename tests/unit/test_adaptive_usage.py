"""What local jobs use: /proc parsing and the sampler on real processes."""

import os
import subprocess
import sys
import time

import pytest

from snakemake_executor_hybrid.adaptive import usage

GROW = "import time; b = bytearray({mb} << 20); b[::4096] = b'x' * len(b[::4096]); time.sleep({s})"


def test_stat_line_with_spaces_and_parentheses_in_the_name():
    line = (
        "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194304 10 0 0 0 150 50 20 30 20 0 1 0 99 1000 2560"
    )
    proc = usage.parse_stat(4242, line)
    assert proc is not None
    assert (proc.comm, proc.ppid, proc.rss_bytes) == ("my (odd) cmd", 1, 2560 * usage.PAGE)
    assert proc.cpu_s == pytest.approx((150 + 50 + 20 + 30) / usage.TICKS)
    assert usage.parse_stat(1, "garbage") is None


def test_this_process_is_in_the_snapshot():
    me = usage.snapshot()[os.getpid()]
    assert me.ppid == os.getppid() and me.rss_bytes > 0


@pytest.mark.parametrize(
    ("argv", "value"),
    [
        (["podman", "run", "--rm", "--name", "snakemake-1a2b", "img"], "snakemake-1a2b"),
        (["podman", "run", "--name=snakemake-3c", "img"], "snakemake-3c"),
        (
            ["/usr/bin/conmon", "--api-version", "1", "-n", "snakemake-1a2b", "-r", "runc"],
            "snakemake-1a2b",
        ),
        (["podman", "ps"], None),
    ],
)
def test_container_names_from_client_and_conmon_command_lines(argv, value):
    assert usage.option_value(argv, "--name", "-n") == value


def test_a_process_tree_is_measured_children_included():
    sampler = usage.Sampler(interval=0.05)
    # a shell whose child holds 80 MB, as a job's shell command would
    proc = subprocess.Popen(["/bin/sh", "-c", f'{sys.executable} -c "{GROW.format(mb=80, s=1)}"'])
    sampler.start("job", lambda: [proc.pid])
    proc.wait()
    used = sampler.stop("job")
    assert used is not None
    assert used.mem_mb is not None and 80 <= used.mem_mb < 200
    assert used.wall_s >= 1.0 and used.cpu_s is not None
    assert sampler.stop("job") is None


def test_a_job_without_processes_records_no_memory():
    sampler = usage.Sampler(interval=0.05)
    sampler.start("job", lambda: [])
    time.sleep(0.2)
    used = sampler.stop("job")
    assert used is not None and used.mem_mb is None and used.wall_s >= 0.2
