"""Atomic, permission-aware file writes and file locks shared by the store, the audit
log and the server's secrets."""

import contextlib
import fcntl
import json
import os
import threading
from pathlib import Path
from typing import Any

# share mode -> (file mode, directory mode)
SHARE_MODES = {
    "private": (0o600, 0o700),
    "group-read": (0o640, 0o2750),
    "group-write": (0o660, 0o2770),
}


def modes(share: str) -> tuple[int, int]:
    try:
        return SHARE_MODES[share]
    except KeyError:
        raise ValueError(
            f"unknown share mode {share!r}: use one of {', '.join(SHARE_MODES)}"
        ) from None


def ensure_dir(path: Path, dir_mode: int) -> None:
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, dir_mode)


def write_atomic(path: Path, text: str, file_mode: int) -> None:
    """Write ``text`` to ``path`` so readers see the old or the new file, never a part;
    on disk (the file and its directory flushed) when this returns."""
    # one temporary name per process and thread: no random names to make and retry
    tmp = str(path.parent / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        try:
            fd = os.open(tmp, flags, file_mode)
        except FileExistsError:  # left by a crash of an earlier process with this pid
            os.unlink(tmp)
            fd = os.open(tmp, flags, file_mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), file_mode)
        os.replace(tmp, path)
    except BaseException:
        with_suppressed_unlink(tmp)
        raise
    fsync_dir(path.parent)


def append_durably(path: Path, line: bytes, file_mode: int) -> None:
    """Append ``line`` (one line, ending in a newline) to ``path`` with a single write,
    on disk when this returns. The file is created with ``file_mode`` if needed (and its
    directory flushed then); after a line torn by a crash, ``line`` starts a new one."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
        created = False
    except FileNotFoundError:
        fd = open_shared(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC, file_mode)
        created = True
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_bytes(path: str) -> bytes:
    """The whole file (``Path.read_bytes`` without the buffered file object: about a
    fifth of the time, which counts when listing thousands of gates)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def json_text(data: Any) -> str:
    """``data`` as JSON with one top-level key per line: readable, and written by the C
    encoder (``indent`` would switch to the pure-Python one, several times slower)."""
    if not isinstance(data, dict) or not data:
        return json.dumps(data, sort_keys=True) + "\n"
    items = (f"{json.dumps(k)}: {json.dumps(data[k], sort_keys=True)}" for k in sorted(data))
    return "{\n " + ",\n ".join(items) + "\n}\n"


def write_json_atomic(path: Path, data: Any, file_mode: int) -> None:
    write_atomic(path, json_text(data), file_mode)


def with_suppressed_unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class FileLock:
    """An exclusive ``flock`` on a lock file, for threads and processes alike.

    A waiter blocks in the kernel and wakes as soon as the holder lets go (no polling,
    no timeout: a holder is a short critical section of this package). Re-entrant within
    a thread for the same object; two objects for one path exclude each other. The lock
    file is made with ``file_mode`` (whatever the umask), so that every member of a
    store's share mode can open it.
    """

    def __init__(self, path: Path, file_mode: int) -> None:
        self.path = path
        self.file_mode = file_mode
        self._held = threading.local()

    def __enter__(self) -> "FileLock":
        depth = getattr(self._held, "depth", 0)
        if depth == 0:
            fd = open_shared(self.path, os.O_RDWR, self.file_mode)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            self._held.fd = fd
        self._held.depth = depth + 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._held.depth -= 1
        if self._held.depth == 0:
            os.close(self._held.fd)  # closing the descriptor releases the lock


def open_shared(path: Path, flags: int, file_mode: int) -> int:
    """``os.open(path, flags)``, creating the file with exactly ``file_mode`` if needed
    (the umask would narrow it and lock others of the store's share mode out)."""
    try:
        return os.open(path, flags)
    except FileNotFoundError:
        pass
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, file_mode)
    except FileExistsError:  # made by another process meanwhile
        return os.open(path, flags)
    os.fchmod(fd, file_mode)
    return fd
