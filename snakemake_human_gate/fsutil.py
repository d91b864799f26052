"""Share modes of a store, and atomic writes of files outside it (a gate's output, a
container launcher): the store's own files go through :mod:`.storefs`."""

import os
from pathlib import Path

from . import storefs

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


def write_atomic(path: Path, text: str, file_mode: int) -> None:
    """Write ``text`` to ``path`` so readers see the old or the new file, never a part;
    on disk (the file and its directory flushed) when this returns. A link at ``path``
    is replaced, not written through."""
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        storefs.write_atomic(dir_fd, path.name, text.encode(), file_mode, str(path))
    finally:
        os.close(dir_fd)
