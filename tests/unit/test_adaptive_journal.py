"""The run journal: rows round-trip, problems are one warning, nothing waits for a lock."""

import sqlite3
import subprocess
import sys
import time

import pytest

from snakemake_executor_hybrid.adaptive import journal
from snakemake_executor_hybrid.adaptive.journal import Journal, Record

# /proc/self/mountinfo lines of this machine, and an NFS mount in the format of proc(5)
MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684084k
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
36 27 0:50 / /home rw,relatime shared:30 - nfs4 fileserver:/export/home rw,vers=4.2
37 27 0:51 / /scratch\\040space rw,relatime - lustre 10.0.0.1@tcp:/scratch rw
"""


class Warnings(list):
    def warning(self, message: str) -> None:
        self.append(message)

    def info(self, message: str) -> None:
        pass


def row(**changes) -> Record:
    values = dict(
        run_id="r1", rule="align", wildcards={"sample": "a"}, backend="slurm", attempt=1,
        state="succeeded", input_bytes=123, external_id="42", req_threads=2, req_mem_mb=1000,
        req_runtime_min=5, learned={"mem_mb": {"value": 1000, "how": "default"}},
        used_wall_s=3.5, used_cpu_s=2.0, used_mem_mb=512.5, reason=None, submitted=1.0, ended=2.0,
    )  # fmt: skip
    return Record(**{**values, **changes})


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/work/x/.snakemake/hybrid", "ext4"),
        ("/home/me/project/.snakemake", "nfs4"),
        ("/homework", "ext4"),
        ("/scratch space/run", "lustre"),
        ("/dev/shm/x", "tmpfs"),
    ],
)
def test_file_system_type_of_the_longest_mount_point(path, kind):
    assert journal.fs_type(path, MOUNTINFO) == kind


def test_network_file_systems_are_recognised():
    assert all(journal.is_network_fs(k) for k in ("nfs", "nfs4", "lustre", "gpfs", "fuse.sshfs"))
    assert not any(journal.is_network_fs(k) for k in ("ext4", "xfs", "btrfs", "tmpfs", "zfs"))


def test_rows_round_trip_in_wal_mode(tmp_path):
    path = tmp_path / "h" / "history.sqlite"
    log = Warnings()
    j = Journal(path, log)
    j.record(row())
    j.record(row(attempt=2, state="out_of_memory", reason="killed"))
    j.close()
    assert journal.read(path) == [row(), row(attempt=2, state="out_of_memory", reason="killed")]
    assert journal.read(path, "state = ?", ("out_of_memory",))[0].attempt == 2
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == journal.SCHEMA_VERSION
    assert log == []


def test_network_file_system_uses_a_rollback_journal_and_says_so_once(tmp_path, monkeypatch):
    monkeypatch.setattr(journal, "local_fs", lambda path: (False, "nfs4"))
    path = tmp_path / "history.sqlite"
    log = Warnings()
    j = Journal(path, log)
    j.record(row())
    j.record(row(attempt=2))
    j.close()
    assert len(journal.read(path)) == 2
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert len(log) == 1 and "nfs4 file system, where SQLite's WAL mode does not work" in log[0]


def test_no_journal_reads_as_empty(tmp_path):
    assert journal.read(tmp_path / "none.sqlite") == []


LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def locked(tmp_path):
    """A journal held in an exclusive lock by another process (until its stdin closes)."""
    path = tmp_path / "history.sqlite"
    Journal(path).close()
    first = Journal(path)
    first.record(row(run_id="before"))
    first.close()
    proc = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout.readline().strip() == "locked"
    yield path, proc
    proc.stdin.close()
    proc.wait(10)


def test_a_locked_journal_is_one_warning_and_never_waits(locked):
    path, _ = locked
    log = Warnings()
    j = Journal(path, log)
    start = time.monotonic()
    for attempt in range(1, 50):
        j.record(row(attempt=attempt))
    assert time.monotonic() - start < 0.1
    time.sleep(journal.BUSY_TIMEOUT * 3)
    start = time.monotonic()
    j.close(timeout=1.0)
    assert time.monotonic() - start < 1.5
    assert len(log) == 2
    assert "is locked by another process" in log[0] and "the run goes on" in log[0]
    assert "49 record(s) of this run were not written" in log[1]


def test_rows_held_back_by_a_lock_are_written_once_it_is_released(locked):
    path, locker = locked
    log = Warnings()
    j = Journal(path, log)
    j.record(row(run_id="during"))
    time.sleep(journal.BUSY_TIMEOUT * 2)
    locker.stdin.close()
    locker.wait(10)
    j.close(timeout=journal.RETRY_SECONDS + 3)
    assert [r.run_id for r in journal.read(path)] == ["before", "during"]
    assert len(log) == 1 and "locked" in log[0]


def test_a_corrupt_journal_is_one_warning_and_is_left_alone(tmp_path):
    path = tmp_path / "history.sqlite"
    path.write_bytes(b"this is not an SQLite database at all" * 100)
    log = Warnings()
    j = Journal(path, log)
    j.record(row())
    j.record(row(attempt=2))
    j.close()
    assert len(log) == 1
    assert "cannot be used" in log[0] and "Move the file away" in log[0]
    assert path.read_bytes().startswith(b"this is not")


def test_a_journal_of_a_newer_version_is_not_written(tmp_path):
    path = tmp_path / "history.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={journal.SCHEMA_VERSION + 1}")
    log = Warnings()
    j = Journal(path, log)
    j.record(row())
    j.close()
    assert len(log) == 1 and "written by a newer version" in log[0]
    with pytest.raises(sqlite3.DatabaseError, match="newer version"):
        journal.read(path)
