"""Append-only audit log: JSON lines, each carrying the hash of the line before.

``audit.jsonl`` holds the entries; ``audit.head`` the count and hash of the last
one, so that a truncated tail is detected too. Appends are serialised by a file
lock; a line is never rewritten.
"""

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .fsutil import file_lock, write_atomic

GENESIS = "0" * 64


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    entries: int
    problem: str = ""  # the first tampered or missing entry, when not ok


class AuditLog:
    def __init__(self, root: Path, file_mode: int) -> None:
        self.path = root / "audit.jsonl"
        self.head = root / "audit.head"
        self._lock = file_lock(root / "locks" / "audit.lock", file_mode)
        self._file_mode = file_mode

    def append(self, event: str, gate: str | None, actor: str, **data: Any) -> dict[str, Any]:
        with self._lock:
            count, prev = self._read_head()
            entry = {
                "seq": count + 1,
                "ts": round(time.time(), 6),
                "event": event,
                "gate": gate,
                "actor": actor,
                **data,
                "prev": prev,
            }
            line = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode() + b"\n"
            created = not self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, self._file_mode)
            try:
                if created:  # the umask must not narrow the store's share mode
                    os.fchmod(fd, self._file_mode)
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            write_atomic(self.head, f"{count + 1} {line_hash(line)}\n", self._file_mode)
        return entry

    def _read_head(self) -> tuple[int, str]:
        try:
            count, digest = self.head.read_text().split()
            return int(count), digest
        except FileNotFoundError:
            return 0, GENESIS

    def entries(self, gate: str | None = None) -> Iterator[dict[str, Any]]:
        """The parsed entries (all, or those of one gate); unreadable lines are skipped."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if gate is None or entry.get("gate") == gate:
                    yield entry

    def verify(self) -> Verdict:
        """Check the chain from the first entry to the head; name the first break."""
        prev, seq = GENESIS, 0
        if self.path.exists():
            with open(self.path, "rb") as f:
                for number, line in enumerate(f, start=1):
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        return Verdict(False, seq, f"line {number} is not valid JSON")
                    if entry.get("seq") != seq + 1:
                        return Verdict(
                            False,
                            seq,
                            f"line {number}: entry {seq + 1} is missing "
                            f"(found seq {entry.get('seq')!r})",
                        )
                    if entry.get("prev") != prev:
                        return Verdict(
                            False,
                            seq,
                            f"entry {seq} (line {number - 1}) was altered: entry {seq + 1} "
                            "does not carry its hash",
                        )
                    prev, seq = line_hash(line), seq + 1
        count, head = self._read_head()
        if count != seq or head != prev:
            if count > seq:
                return Verdict(
                    False, seq, f"entries {seq + 1}..{count} are missing (log truncated)"
                )
            return Verdict(False, seq, f"entry {seq} was altered or the head file does not match")
        return Verdict(True, seq)
