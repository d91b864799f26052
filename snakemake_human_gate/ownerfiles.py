"""Files that only the store's owner may write: ``<store>/keys/`` holds the registry of
signing keys (``signing.py``) and the approver groups (``groups.py``).

In a group-write store every member may write the gates, the answers and the audit log;
these files decide whose signatures count and who may decide, so no member may change
them. The directory and each file must belong to the store's owner (the user owning the
store's directory) and be writable by nobody else; a file that is not is refused
(``OwnerFileError``, naming the fix), never used. Writing them is the owner's alone; the
first write in a group-write store makes the store's directory sticky, so that no member
can move ``keys/`` away and put a directory of their own in its place.
"""

import os
import stat

from .errors import GateError
from .storefs import StoreTree, UnsafeFile, read_file, write_atomic

DIRECTORY = "keys"
DIR_MODE = 0o755  # readable by every member, writable by the owner alone
FILE_MODE = 0o644


class OwnerFileError(GateError):
    """A file of ``keys/`` that cannot be trusted, or a write by someone but the owner."""


def owner(tree: StoreTree) -> int:
    """The store's owner: the user owning its directory."""
    with tree.dir() as root:
        return os.fstat(root).st_uid


def read(tree: StoreTree, name: str, limit: int) -> bytes | None:
    """The bytes of ``keys/NAME`` (None if missing), checked to be the owner's alone."""
    shown = tree.shown(DIRECTORY, name)
    try:
        with tree.dir(DIRECTORY) as d:
            dir_info, raw = os.fstat(d), read_file(d, name, shown, limit)
            file_info = os.stat(name, dir_fd=d, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except UnsafeFile as e:
        raise OwnerFileError(str(e)) from None
    store_owner = owner(tree)
    for info, what in ((dir_info, tree.shown(DIRECTORY)), (file_info, shown)):
        if info.st_uid != store_owner or info.st_mode & 0o022:
            raise OwnerFileError(
                f"{what} must belong to the store's owner (uid {store_owner}) and be "
                f"writable by nobody else (it is uid {info.st_uid}, mode "
                f"{stat.S_IMODE(info.st_mode):o}): someone may have replaced it"
            )
    return raw


def check_writer(tree: StoreTree, what: str, command: str) -> None:
    """Refuse anyone but the store's owner, naming who may and what they would run."""
    if os.geteuid() != owner(tree):
        raise OwnerFileError(
            f"only the store's owner (uid {owner(tree)}) may {what}: ask them to run '{command}'"
        )


def write(tree: StoreTree, name: str, data: bytes, share: str) -> list[str]:
    """Replace ``keys/NAME`` (the caller checked the writer); what was done besides."""
    with tree.dir(DIRECTORY, create=DIR_MODE) as d:
        os.fchmod(d, DIR_MODE)
        write_atomic(d, name, data, FILE_MODE, tree.shown(DIRECTORY, name))
    done = []
    if share == "group-write":
        with tree.dir() as root:
            mode = os.fstat(root).st_mode
            if not mode & stat.S_ISVTX:  # members may no longer move keys/ (or others) away
                os.fchmod(root, stat.S_IMODE(mode) | stat.S_ISVTX)
                done.append(
                    f"{tree.root} is now sticky: members cannot rename what they do not own"
                )
    return done
