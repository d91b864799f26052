"""Files inside a store, reached without following a symbolic link at any component.

The store's root is opened as configured (the path its users chose; it may itself lie
behind a link). Everything below it is reached one component at a time, each opened
relative to its parent's descriptor with ``O_NOFOLLOW``: a link planted anywhere in the
store (in a group-write store, by any member) is refused, never followed out of it, for
reads, writes, renames and archive moves alike. ``O_NOFOLLOW`` on a whole path would
protect its last component only.

Only regular files are opened: with ``O_NONBLOCK`` (a FIFO cannot hang the caller),
then ``fstat`` (a FIFO, a device or a socket is refused with :class:`UnsafeFile`), and
files opened for writing must have one link (a hard link planted to a file elsewhere
is refused, not written through). Reads know the size before they read.
"""

import contextlib
import errno
import fcntl
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

from .errors import GateError

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_WRITING = os.O_WRONLY | os.O_RDWR
_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISREG, "a regular file"),
)


class UnsafeFile(GateError):
    """A path in the store that is a symbolic link, or not the kind of file it should be
    (a FIFO or a device where a regular file belongs): refused, never followed or read.
    ``found`` says what it is ("a FIFO", ...)."""

    def __init__(self, message: str, found: str = "") -> None:
        super().__init__(message)
        self.found = found


def kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "an unknown kind of file")


def _unsafe(shown: str, found: str, expected: str) -> UnsafeFile:
    return UnsafeFile(
        f"{shown} is {found}, not {expected}: the store never follows links nor opens "
        "special files (a link could lead a write out of the store, a FIFO would hang "
        "the reader). Remove it, and find out who put it there",
        found,
    )


def _refusal(dir_fd: int, name: str, shown: str, expected: str) -> UnsafeFile:
    """Why ``name`` could not be opened as ``expected``."""
    try:
        found = kind(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        found = "not openable"
    return _unsafe(shown, found, expected)


class StoreTree:
    """The files under ``root``, reached through directory descriptors only."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._root = str(root)

    def shown(self, *parts: str) -> str:
        """A path for messages."""
        return "/".join((self._root, *parts))

    @contextlib.contextmanager
    def dir(self, *parts: str, create: int | None = None, at: int | None = None) -> Iterator[int]:
        """The directory ``root/parts...`` as a descriptor, each component opened without
        following a link; with ``create`` (a mode), missing ones are made with it. ``at``:
        the root's descriptor, if the caller has it open."""
        if at is None:
            fd = os.open(self._root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        else:
            fd = os.dup(at)
        try:
            for depth, part in enumerate(parts):
                child = open_dir(fd, part, self.shown(*parts[: depth + 1]), create)
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    def make_dir(self, *parts: str, mode: int) -> None:
        """``root/parts...``, made with ``mode`` if missing (and its parents in the store)."""
        with self.dir(*parts, create=mode):
            pass

    def read(self, *path: str, limit: int) -> bytes:
        """The bytes of the regular file ``root/path...`` (FileNotFoundError if missing)."""
        with self.dir(*path[:-1]) as d:
            return read_file(d, path[-1], self.shown(*path), limit)

    @contextlib.contextmanager
    def locked(self, *path: str, mode: int, at: int | None = None) -> Iterator[None]:
        """An exclusive ``flock`` on the lock file ``root/path...`` (made with ``mode``),
        for threads and processes alike; a waiter blocks until the holder lets go."""
        with self.dir(*path[:-1], at=at) as d:
            fd = open_file(d, path[-1], os.O_RDWR, self.shown(*path), create=mode)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock


def open_dir(dir_fd: int, name: str, shown: str, create: int | None = None) -> int:
    """The subdirectory ``name`` of ``dir_fd`` (not a link), made with mode ``create``."""
    try:
        return os.open(name, _DIR, dir_fd=dir_fd)
    except FileNotFoundError:
        if create is None:
            raise
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _refusal(dir_fd, name, shown, "a directory") from None
        raise
    with contextlib.suppress(FileExistsError):  # made by another process meanwhile
        os.mkdir(name, create, dir_fd=dir_fd)
        fd = open_dir(dir_fd, name, shown)
        os.fchmod(fd, create)  # exactly: the umask would lock others of the share mode out
        return fd
    return open_dir(dir_fd, name, shown)


def open_file(dir_fd: int, name: str, flags: int, shown: str, create: int | None = None) -> int:
    """A descriptor of the regular file ``name`` in ``dir_fd``, opened with ``flags``;
    with ``create`` (a mode), the file is made with exactly that mode if missing."""
    try:
        fd = os.open(name, flags | _FILE, dir_fd=dir_fd)
    except FileNotFoundError:
        if create is None:
            raise
        try:
            fd = os.open(name, flags | _FILE | os.O_CREAT | os.O_EXCL, create, dir_fd=dir_fd)
        except FileExistsError:  # made by another process meanwhile
            return open_file(dir_fd, name, flags, shown)
        except OSError as e:
            if e.errno != errno.ELOOP:  # a dangling link: refused below
                raise
        else:
            os.fchmod(fd, create)
            return fd
        raise _refusal(dir_fd, name, shown, "a regular file") from None
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENXIO, errno.ENOTDIR, errno.EISDIR):
            raise _refusal(dir_fd, name, shown, "a regular file") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise _unsafe(shown, kind(info.st_mode), "a regular file")
    if flags & _WRITING and info.st_nlink != 1:
        os.close(fd)
        raise UnsafeFile(
            f"{shown} has {info.st_nlink} hard links: a write to it would change the other "
            "names too. Copy it to a file of its own (cp, then mv over it) if you made them"
        )
    return fd


def open_regular(path: Path) -> int:
    """A descriptor of the regular file at ``path`` for reading, outside any store (a
    workflow's own file: links in its path are followed). A FIFO or a device is refused
    before it is opened (opening a device may act), and after (swapped meanwhile)."""
    before = os.stat(path)
    if not stat.S_ISREG(before.st_mode):
        raise _unsafe(str(path), kind(before.st_mode), "a regular file")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or (info.st_dev, info.st_ino) != (
        before.st_dev,
        before.st_ino,
    ):
        os.close(fd)
        raise UnsafeFile(f"{path} was replaced while it was opened: try again", "replaced")
    return fd


def read_file(dir_fd: int, name: str, shown: str, limit: int) -> bytes:
    """The bytes of the regular file ``name``: as many as its size when opened (a line
    appended meanwhile is read next time), refused over ``limit``."""
    fd = open_file(dir_fd, name, os.O_RDONLY, shown)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise UnsafeFile(f"{shown} is {size} bytes, over the {limit} a store file may have")
        chunks, left = [], size
        while left > 0 and (chunk := os.read(fd, left)):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_atomic(dir_fd: int, name: str, data: bytes, mode: int, shown: str) -> None:
    """Replace ``name`` with ``data`` so that readers see the old or the new file, never a
    part; on disk (the file and its directory flushed) when this returns. A link at
    ``name`` is replaced, not followed."""
    # one temporary name per process and thread: no random names to make and retry
    tmp = f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        try:
            fd = os.open(tmp, flags, mode, dir_fd=dir_fd)
        except FileExistsError:  # left by a crash of an earlier process with this pid
            os.unlink(tmp, dir_fd=dir_fd)
            fd = os.open(tmp, flags, mode, dir_fd=dir_fd)
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    os.fsync(dir_fd)


@contextlib.contextmanager
def appending(dir_fd: int, name: str, mode: int, shown: str) -> Iterator[int]:
    """The regular file ``name`` open for appending (made with ``mode`` if needed, and
    then its directory flushed) for :func:`append_line`."""
    try:
        fd = open_file(dir_fd, name, os.O_RDWR | os.O_APPEND, shown)
        created = False
    except FileNotFoundError:
        fd = open_file(dir_fd, name, os.O_RDWR | os.O_APPEND, shown, create=mode)
        created = True
    try:
        if created:
            os.fsync(dir_fd)
        yield fd
    finally:
        os.close(fd)


def append_line(fd: int, line: bytes, durable: bool = True) -> None:
    """Append ``line`` (one line, ending in a newline) with a single write; on disk when
    this returns if ``durable``. After a line torn by a crash, ``line`` starts a new one."""
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        line = b"\n" + line
    os.write(fd, line)
    if durable:
        os.fsync(fd)
