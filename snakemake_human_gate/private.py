"""The private part of a store: ``<root>/auth/``, the gate server's secrets.

It belongs to the user who runs the server and stays private (directory 0o700, files
0o600) whatever the store's share mode: group members may read or decide gates as the
share mode allows, but may neither read the secrets nor replace them (in a group-writable
store they could otherwise swap in a token file of their own). As ssh does, every read
checks that the directory and the file belong to this user and are closed to others,
and refuses them otherwise (:class:`AuthFileError`). Like the rest of the store, they
are reached without following links, and only regular files are read (:mod:`.storefs`).
"""

import contextlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import GateError, InvalidInput
from .fsutil import modes
from .storefs import StoreTree, open_file, write_atomic
from .text import json_text

SECRET_FILE_MODE = 0o600
SECRET_DIR_MODE = 0o700
AUTH = "auth"
LIMIT = 16 << 20  # bytes of a secrets file


class AuthFileError(GateError):
    """A secret file is unreadable, or others could write it: fix it, then retry."""


def check_private(path: Path | str, info: os.stat_result) -> None:
    if info.st_uid != os.geteuid():
        raise AuthFileError(
            f"{path} belongs to uid {info.st_uid}, not to you (uid {os.geteuid()}): "
            "manage authentication as the user who runs the gate server"
        )
    if info.st_mode & 0o077:
        raise AuthFileError(
            f"{path} is open to others (mode {stat.S_IMODE(info.st_mode):o}): "
            f"run 'chmod go= {path}' if nobody else changed it, else replace the secrets"
        )


class PrivateFiles:
    """The files of ``<root>/auth/`` (made private if missing; the root, if missing, with
    ``share``'s directory mode)."""

    def __init__(self, root: Path, share: str) -> None:
        try:
            _, dir_mode = modes(share)
        except ValueError as e:
            raise InvalidInput(str(e)) from None
        if not root.is_dir():
            root.mkdir(parents=True, exist_ok=True)
            os.chmod(root, dir_mode)
        self.tree = StoreTree(root)
        self.directory = root / AUTH
        self._shown = str(self.directory)
        with self.dir(create=True):
            pass

    def path(self, *names: str) -> Path:
        """A path for messages."""
        return self.directory.joinpath(*names)

    @contextlib.contextmanager
    def dir(self, *sub: str, create: bool = False) -> Iterator[int]:
        """``auth/`` (or a directory in it) as a descriptor, checked private first."""
        mode = SECRET_DIR_MODE if create else None
        with self.tree.dir(AUTH, *sub, create=mode) as fd:
            check_private("/".join((self._shown, *sub)), os.fstat(fd))
            yield fd

    def read(self, name: str) -> bytes | None:
        """The file's bytes (None if missing), after checking it is this user's alone."""
        with self.dir() as d:
            try:
                fd = open_file(d, name, os.O_RDONLY, f"{self._shown}/{name}")
            except FileNotFoundError:
                return None
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            check_private(f"{self._shown}/{name}", info)
            if info.st_size > LIMIT:
                raise AuthFileError(f"{self.path(name)} is over {LIMIT} bytes: not a secrets file")
            return f.read(info.st_size)

    def read_json(self, name: str, key: str) -> dict[str, Any]:
        """The object under ``key`` in a private JSON file ({} if the file is missing)."""
        raw = self.read(name)
        if raw is None:
            return {}
        try:
            items = json.loads(raw)[key]
        except (ValueError, KeyError, TypeError):
            items = None
        if not isinstance(items, dict):
            raise AuthFileError(
                f"{self.path(name)} is not a valid {name} file: restore it from a backup or "
                "remove it (which revokes what it holds)"
            )
        return items

    def write(self, name: str, data: bytes) -> None:
        """Replace the file (atomically, on disk when this returns)."""
        with self.dir() as d:
            write_atomic(d, name, data, SECRET_FILE_MODE, str(self.path(name)))

    def write_json(self, name: str, data: Any) -> None:
        self.write(name, json_text(data).encode())

    def lock(self, name: str) -> contextlib.AbstractContextManager[None]:
        """An exclusive lock of its own for ``name`` (a private lock file)."""
        return self.tree.locked(AUTH, f"{name}.lock", mode=SECRET_FILE_MODE)
