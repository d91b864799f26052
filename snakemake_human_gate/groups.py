"""Approver groups: ``approvers=["@ml-leads"]``, so that a team changes its members
without editing Snakefiles.

``@NAME`` is looked up first in the store's group file, ``<store>/keys/groups.json``,
which only the store's owner writes (``snakemake-gate group set NAME USER...``; checked
like the key registry: ``ownerfiles.py``), then among the OS groups (its listed members
and the users whose primary group it is). It is never read from a file that members of
a group-write store could edit: anyone could add themselves. A group found in neither
place has no members (the executor refuses to start with one).
"""

import grp
import json
import pwd
from collections.abc import Iterable
from dataclasses import dataclass

from . import ownerfiles
from .errors import InvalidInput
from .storefs import StoreTree
from .text import json_text

FILE = "groups.json"
SCHEMA = 1
LIMIT = 1 << 20


@dataclass(frozen=True)
class Group:
    name: str
    members: frozenset[str]
    source: str  # where it was found: the group file, or "OS group"


def read_file(tree: StoreTree) -> dict[str, list[str]]:
    """The store's group file as NAME -> members ({} when there is none); OwnerFileError
    when it cannot be trusted."""
    raw = ownerfiles.read(tree, FILE, LIMIT)
    if raw is None:
        return {}
    try:
        groups = json.loads(raw)["groups"]
        if not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(m, str) for m in v)
            for k, v in groups.items()
        ):
            raise TypeError("a group must be a list of user names")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ownerfiles.OwnerFileError(
            f"{tree.shown(ownerfiles.DIRECTORY, FILE)} is not a group file ({e}): fix it or "
            "set the groups again with 'snakemake-gate group set'"
        ) from None
    return dict(groups)


def os_group(name: str) -> frozenset[str] | None:
    """Members of the OS group ``name`` (None if there is none)."""
    try:
        entry = grp.getgrnam(name)
    except KeyError:
        return None
    primary = {p.pw_name for p in pwd.getpwall() if p.pw_gid == entry.gr_gid}
    return frozenset(entry.gr_mem) | frozenset(primary)


class Groups:
    """Resolves ``@NAME`` for one store (the file read once per instance)."""

    def __init__(self, tree: StoreTree) -> None:
        self.tree = tree
        self._file: dict[str, list[str]] | None = None

    def get(self, name: str) -> Group | None:
        """The group ``name`` (without its '@'), or None if it is defined nowhere."""
        if self._file is None:
            self._file = read_file(self.tree)
        if name in self._file:
            return Group(name, frozenset(self._file[name]), "the store's group file")
        members = os_group(name)
        return Group(name, members, "OS group") if members is not None else None

    def members(self, name: str) -> frozenset[str]:
        found = self.get(name)
        return found.members if found is not None else frozenset()

    def unknown(self, names: Iterable[str]) -> list[str]:
        """The ``@NAME`` entries among ``names`` that are defined nowhere."""
        return [n for n in names if n.startswith("@") and self.get(n[1:]) is None]


def set_group(tree: StoreTree, name: str, members: list[str], share: str) -> list[str]:
    """Define (or, with no members, remove) a group in the store's group file: the
    owner only. What was done besides (a group-write store made sticky)."""
    from .spec import deciders

    for member in members:
        deciders([member], "group members")
        if member.startswith("@"):
            raise InvalidInput(f"group members are users, not groups: {member!r}")
    deciders([f"@{name}"], "group name")
    command = f"snakemake-gate group set {name} {' '.join(members)}".rstrip()
    ownerfiles.check_writer(tree, "change approver groups", command)
    groups = read_file(tree)
    if members:
        groups[name] = sorted(set(members))
    else:
        groups.pop(name, None)
    data = json_text({"schema": SCHEMA, "groups": dict(sorted(groups.items()))}).encode()
    return ownerfiles.write(tree, FILE, data, share)
