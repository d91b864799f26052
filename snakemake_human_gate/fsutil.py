"""Atomic, permission-aware file writes shared by the store and the audit log."""

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from filelock import FileLock

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
    """Write ``text`` to ``path`` so readers see the old or the new file, never a part."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode)
        os.replace(tmp, path)
    except BaseException:
        with_suppressed_unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_json_atomic(path: Path, data: Any, file_mode: int) -> None:
    write_atomic(path, json.dumps(data, indent=1, sort_keys=True) + "\n", file_mode)


def with_suppressed_unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def file_lock(path: Path, file_mode: int) -> FileLock:
    """A lock file every member of the store's share mode can open (the umask would
    otherwise narrow the mode its creator gives it)."""
    if not path.exists():
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, file_mode)
        except FileExistsError:
            pass
        else:
            os.fchmod(fd, file_mode)
            os.close(fd)
    return FileLock(str(path), mode=file_mode)
