"""Append-only audit log: JSON lines, each carrying the hash of the line before.

``audit.jsonl`` holds the entries, each flushed to disk before ``append`` returns
(the flush happens outside the lock: concurrent appends share it).
``audit.head`` holds the count and hash of the last entry, so that a truncated tail
is detected too; it is rewritten in place on every append but not flushed (one flush
per entry instead of three), so after a crash it may lag behind the log, which ``verify``
accepts as long as the entries it names are intact. Appends are serialised by a file
lock and chain onto the log's own last line; a line is never rewritten. Both files are
reached without following links (:mod:`.storefs`).
"""

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .signing import Signer, SigningError, current_user, load_signer, registered
from .storefs import StoreTree, open_file
from .text import json_line

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
TAIL_BLOCK = 8192
HEAD_LIMIT = 4096


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def _last_entry(fd: int) -> tuple[int, str, bool]:
    """Sequence number and hash of the last whole entry of the log open as ``fd``, and
    whether a torn line follows it."""
    start = os.fstat(fd).st_size
    tail = b""
    while start > 0:  # read backwards until the last whole line is in
        step = min(start, TAIL_BLOCK)
        start -= step
        tail = os.pread(fd, step, start) + tail
        lines = tail.split(b"\n")
        whole = lines[1:-1] if start > 0 else lines[:-1]
        for line in reversed(whole):
            try:
                return int(json.loads(line)["seq"]), line_hash(line), lines[-1] != b""
            except (ValueError, KeyError, TypeError):
                continue  # a torn line in the middle: verify reports it
    return 0, GENESIS, tail != b"" and not tail.endswith(b"\n")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    entries: int
    problem: str = ""  # the first tampered or missing entry, when not ok


LOG = "audit.jsonl"
HEAD = "audit.head"
LOCK = ("locks", "audit.lock")


class AuditLog:
    def __init__(self, tree: StoreTree, file_mode: int) -> None:
        self.tree = tree
        self.path = tree.root / LOG
        self.head = tree.root / HEAD
        self._file_mode = file_mode
        self._signer: Signer | None | bool = False  # False: not looked for yet
        self.warnings: list[str] = []  # why this process's entries go unsigned, if it matters

    def signer(self) -> Signer | None:
        """This process's user's signer, if they have a key (looked for once)."""
        if self._signer is False:
            self._signer = None
            try:
                self._signer = load_signer(current_user())
            except SigningError as e:
                self.warnings.append(f"audit entries are written unsigned: {e}")
            if self._signer is None and not self.warnings and registered(self.tree):
                self.warnings.append(
                    "this store's audit entries are signed, but you have no signing key: "
                    "run 'snakemake-gate key create' and have the store's owner register it"
                )
            for warning in self.warnings:
                logger.warning("%s", warning)
        return self._signer if isinstance(self._signer, Signer) else None

    def _lock(self, at: int | None = None) -> contextlib.AbstractContextManager[None]:
        return self.tree.locked(*LOCK, mode=self._file_mode, at=at)

    def append(self, event: str, gate: str | None, actor: str, **data: Any) -> dict[str, Any]:
        signer = self.signer()
        if signer is not None:
            data = {**data, "signer": signer.user, "key": signer.id}
        with self.tree.dir() as root, self._lock(at=root):
            # both files open before anything is written: one that is unsafe stops it all
            head = open_file(root, HEAD, os.O_WRONLY, str(self.head), create=self._file_mode)
            try:
                flags = os.O_RDWR | os.O_APPEND
                fd = open_file(root, LOG, flags, str(self.path), create=self._file_mode)
            except BaseException:
                os.close(head)
                raise
            try:
                count, prev, torn = _last_entry(fd)
                entry = {
                    "seq": count + 1,
                    "ts": round(time.time(), 6),
                    "event": event,
                    "gate": gate,
                    "actor": actor,
                    **data,
                    "prev": prev,
                }
                line = json_line(entry)
                if signer is not None:
                    line = signer.seal(line)
                # after a torn last line (a crash mid-write) this entry starts a line
                os.write(fd, b"\n" + line if torn else line)
                text = f"{count + 1} {line_hash(line)}\n".encode()  # in place, not flushed
                os.pwrite(head, text, 0)
                os.ftruncate(head, len(text))
            except BaseException:
                os.close(fd)
                raise
            finally:
                os.close(head)
        # Flushed outside the lock, so that appends of other threads and processes do not
        # wait for it (and share the disk's flushes). A flush covers every line written
        # before it, so no entry is reported written while one before it is not on disk.
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return entry

    def _read_head(self) -> tuple[int, str] | None:
        """The head's count and hash; None when it is missing or empty."""
        try:
            try:
                with self._lock():  # appends rewrite it in place
                    raw = self.tree.read(HEAD, limit=HEAD_LIMIT)
            except PermissionError:  # a read-only member of a group-read store
                raw = self.tree.read(HEAD, limit=HEAD_LIMIT)
        except FileNotFoundError:
            return None
        text = raw.decode("ascii", "replace")
        try:
            count, digest = text.split()
            return int(count), digest
        except ValueError:
            if text.strip():
                raise ValueError(f"{self.head} is not 'COUNT SHA256': {text[:80]!r}") from None
            return None

    def lines(self) -> Iterator[bytes]:
        """The log's lines as they are (none if there is no log yet)."""
        try:
            with self.tree.dir() as root:
                fd = open_file(root, LOG, os.O_RDONLY, str(self.path))
        except FileNotFoundError:
            return
        with os.fdopen(fd, "rb") as f:
            yield from f

    def entries(self, gate: str | None = None) -> Iterator[dict[str, Any]]:
        """The parsed entries (all, or those of one gate); unreadable lines are skipped."""
        for line in self.lines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and (gate is None or entry.get("gate") == gate):
                yield entry

    def find_answer(self, answer_id: str) -> tuple[int, str] | None:
        """The sequence number and event of the last entry that names the answer
        ``answer_id`` (None: there is none) — the one that records it, or the one that
        discarded it: a scan of the log, for the rare answer left unconfirmed."""
        needle = f'"answer":{json.dumps(answer_id)}'.encode()
        found = None
        for line in self.lines():
            if needle in line:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    entry = json.loads(line)
                    if entry.get("answer") == answer_id:
                        found = int(entry["seq"]), str(entry["event"])
        return found

    def verify(self) -> Verdict:
        """Check the chain from the first entry to the head; name the first break.

        The head may lag behind the log (it is not flushed: a crash can lose its last
        updates), but the entry it names must be there, unchanged.
        """
        try:
            stated = self._read_head()
        except ValueError as e:
            return Verdict(False, 0, str(e))
        count, head = stated or (0, GENESIS)
        prev, seq, at_head = GENESIS, 0, GENESIS
        for number, line in enumerate(self.lines(), start=1):
            try:
                entry = json.loads(line)
            except ValueError:
                return Verdict(False, seq, f"line {number} is not valid JSON")
            if not isinstance(entry, dict):
                return Verdict(False, seq, f"line {number} is not an entry (a JSON object)")
            if entry.get("seq") != seq + 1:
                return Verdict(
                    False,
                    seq,
                    f"line {number}: entry {seq + 1} is missing (found seq {entry.get('seq')!r})",
                )
            if entry.get("prev") != prev:
                return Verdict(
                    False,
                    seq,
                    f"entry {seq} (line {number - 1}) was altered: entry {seq + 1} "
                    "does not carry its hash",
                )
            prev, seq = line_hash(line), seq + 1
            if seq == count:
                at_head = prev
        if count > seq:
            return Verdict(False, seq, f"entries {seq + 1}..{count} are missing (log truncated)")
        if seq and stated is None:
            return Verdict(
                False,
                seq,
                f"{self.head} is missing or empty (removed, or a crash before it reached the "
                "disk): the end of the log cannot be checked until the next entry is written",
            )
        if head != at_head:
            return Verdict(False, seq, f"entry {count} was altered or the head file does not match")
        return Verdict(True, seq)
