"""The run journal: one SQLite row per job attempt the executor ran.

Writing never slows or stops a run: rows go through a queue to one background
thread, which waits at most ``BUSY_TIMEOUT`` seconds for a lock. A journal that
is locked by another process keeps its rows queued (retried every
``RETRY_SECONDS``) and says so once; one that cannot be used (corrupt, written
by a newer version, not writable) says so once and the run goes on unrecorded.

WAL mode (readers never wait for the writer) is used on local file systems only:
SQLite's WAL needs shared memory that network file systems do not provide.
"""

import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path(".snakemake", "hybrid", "history.sqlite")
SCHEMA_VERSION = 1
BUSY_TIMEOUT = 0.5  # seconds a write or read waits for another process's lock
RETRY_SECONDS = 2.0
MAX_QUEUED = 100_000  # rows kept while the database is locked; older ones are dropped
NETWORK_FS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "ceph",
     "glusterfs", "afs", "9p", "panfs", "wekafs", "orangefs", "pvfs2"}
)  # fmt: skip

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,          -- one Snakemake run
    rule TEXT NOT NULL,            -- 'group:NAME' for a group job
    wildcards TEXT NOT NULL,       -- JSON object
    input_bytes INTEGER,           -- total size of the job's input files
    backend TEXT NOT NULL,
    external_id TEXT,              -- e.g. the SLURM job id
    attempt INTEGER NOT NULL,
    req_threads INTEGER,
    req_mem_mb INTEGER,
    req_runtime_min INTEGER,
    learned TEXT,                  -- JSON: {resource: how the request was made}
    used_wall_s REAL,
    used_cpu_s REAL,
    used_mem_mb REAL,              -- peak resident memory
    state TEXT NOT NULL,           -- states.JobState value, or 'failed_over'
    reason TEXT,
    submitted REAL,                -- Unix time
    ended REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_rule ON jobs (rule, ended);
"""


@dataclass(frozen=True)
class Record:
    run_id: str
    rule: str
    wildcards: dict[str, str]
    backend: str
    attempt: int
    state: str
    input_bytes: int | None = None
    external_id: str | None = None
    req_threads: int | None = None
    req_mem_mb: int | None = None
    req_runtime_min: int | None = None
    learned: dict[str, Any] | None = None
    used_wall_s: float | None = None
    used_cpu_s: float | None = None
    used_mem_mb: float | None = None
    reason: str | None = None
    submitted: float | None = None
    ended: float | None = field(default_factory=time.time)

    def row(self) -> dict[str, Any]:
        row = asdict(self)
        row["wildcards"] = json.dumps(self.wildcards, sort_keys=True)
        row["learned"] = json.dumps(self.learned, sort_keys=True) if self.learned else None
        return row

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "Record":
        values = {f.name: row[f.name] for f in fields(cls)}
        values["wildcards"] = json.loads(values["wildcards"] or "{}")
        values["learned"] = json.loads(values["learned"]) if values["learned"] else None
        return cls(**values)


COLUMNS = tuple(f.name for f in fields(Record))
INSERT = f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})"


# -- file systems -------------------------------------------------------------------


def fs_type(path: str, mountinfo: str) -> str:
    """The file system type of ``path`` (absolute, resolved) from /proc/self/mountinfo text."""
    best, kind = "", "unknown"
    for line in mountinfo.splitlines():
        pre, sep, post = line.partition(" - ")
        parts = pre.split()
        if not sep or len(parts) < 5 or not post.split():
            continue
        mount = parts[4].replace("\\040", " ")
        inside = path == mount or path.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, post.split()[0]
    return kind


def is_network_fs(kind: str) -> bool:
    return kind in NETWORK_FS or kind.startswith("fuse.") or kind.split(".")[0] in NETWORK_FS


def local_fs(path: Path) -> tuple[bool, str]:
    """(is the directory of ``path`` on a local file system, its type)."""
    try:
        with open("/proc/self/mountinfo") as f:
            kind = fs_type(str(path.parent.resolve()), f.read())
    except OSError:
        return True, "unknown"
    return not is_network_fs(kind), kind


# -- connections ----------------------------------------------------------------------


def connect(path: Path, wal: bool) -> sqlite3.Connection:
    """A connection with the schema in place; raises sqlite3 errors as they come."""
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None)
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"written by a newer version (schema {version}, this one reads {SCHEMA_VERSION})"
            )
        if wal:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        if version < SCHEMA_VERSION:
            db.executescript(f"BEGIN; {SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
    except BaseException:
        db.close()
        raise
    db.row_factory = sqlite3.Row
    return db


@contextmanager
def reading(path: Path) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection, or None when there is no journal yet."""
    if not path.exists():
        yield None
        return
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT)
    db.row_factory = sqlite3.Row
    with closing(db):
        yield db


def read(path: Path, where: str = "", params: Iterable[Any] = ()) -> list[Record]:
    """Records (oldest first) matching an SQL condition; raises sqlite3 errors."""
    with reading(path) as db:
        if db is None:
            return []
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            return []
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"written by a newer version (schema {version})")
        sql = f"SELECT * FROM jobs {'WHERE ' + where if where else ''} ORDER BY ended, id"
        return [Record.from_row(row) for row in db.execute(sql, tuple(params))]


# -- the writer -------------------------------------------------------------------------


class Journal:
    """Rows written by one background thread; problems said once, never raised."""

    def __init__(self, path: Path, logger: Any = log) -> None:
        self.path = path
        self._logger = logger
        self._queue: queue.Queue[Record | None] = queue.Queue()
        self._pending: list[Record] = []
        self._said: set[str] = set()
        self._broken = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._abandoned = False

    def say_once(self, key: str, message: str) -> None:
        if key not in self._said:
            self._said.add(key)
            self._logger.warning(message)

    def record(self, record: Record) -> None:
        """Queue ``record``; returns at once."""
        if self._broken:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="hybrid-journal", daemon=True
                )
                self._thread.start()
        self._queue.put(record)

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued, waiting at most ``timeout`` seconds."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(None)
        thread.join(timeout)
        self._abandoned = True  # a thread still waiting for a lock stops at its next try
        lost = len(self._pending) + self._queue.qsize()
        if lost and not self._broken:
            self._logger.warning(
                f"hybrid: {lost} record(s) of this run were not written to the run journal "
                f"{self.path} (still locked by another process); they are lost."
            )

    def _run(self) -> None:
        stopping = False
        while not self._abandoned and not (stopping and (self._broken or not self._pending)):
            wait = 0.2 if stopping else (RETRY_SECONDS if self._pending else None)
            try:
                batch = [self._queue.get(timeout=wait)]
            except queue.Empty:
                batch = []  # time to try the pending rows again
            while not self._queue.empty():  # whatever came meanwhile goes in one transaction
                batch.append(self._queue.get_nowait())
            stopping = stopping or None in batch
            self._pending += [r for r in batch if r is not None]
            del self._pending[:-MAX_QUEUED]
            if self._pending and not self._broken:
                self._write()
        if self._db is not None:
            self._db.close()

    def _write(self) -> None:
        try:
            if self._db is None:
                self._db = self._open()
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(INSERT, [r.row() for r in self._pending])
            self._pending.clear()
        except sqlite3.OperationalError as e:
            if "locked" in str(e) or "busy" in str(e):
                self.say_once(
                    "locked",
                    f"hybrid: the run journal {self.path} is locked by another process "
                    f"({e}); the run goes on, and its records are written once the lock is "
                    "released.",
                )
                return
            self._give_up(e)
        except (sqlite3.Error, OSError) as e:
            self._give_up(e)

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        local, kind = local_fs(self.path)
        if not local:
            self.say_once(
                "fs",
                f"hybrid: the run journal {self.path} is on a {kind} file system, where "
                "SQLite's WAL mode does not work: using a rollback journal instead.",
            )
        return connect(self.path, wal=local)

    def _give_up(self, error: Exception) -> None:
        self._broken = True
        self._pending.clear()
        if self._db is not None:
            self._db.close()
            self._db = None
        self.say_once(
            "broken",
            f"hybrid: the run journal {self.path} cannot be used ({error}); this run is "
            "not recorded and the run goes on. Move the file away (a new journal is "
            "started) or point --hybrid-history elsewhere.",
        )
