"""The one loop that waits for gates, run by the hybrid executor's watcher (every gate
of a run, in a thread) and by ``snakemake-gate await`` (one gate).

Every ``poll`` seconds it looks at each watched gate: a gate whose files did not change
and for which nothing falls due (timeout, reminder, escalation) costs two ``stat``\\ s; a
changed one is read, its timeout applied, its news sent (:mod:`.news`); a gate reset or
reopened meanwhile is asked again; a decided one is handed to its ``decided`` callback
and no longer watched.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .news import News, next_due
from .record import GateRecord
from .store import GateStore

Log = Callable[[str], None]


@dataclass
class Watched:
    ask: Callable[[], GateRecord]  # asks again (after a reset or reopen meanwhile)
    decided: Callable[[GateRecord], None]
    version: tuple[int, int] = (-1, -1)  # of the gate's files, when last read
    look_at: float = 0.0  # when something falls due (a timeout, a reminder)


class Waiter:
    def __init__(self, store: GateStore, news: News | None, poll: float, log: Log) -> None:
        self.store = store
        self.news = news
        self.poll = poll
        self.log = log
        self._watched: dict[str, Watched] = {}
        self._lock = threading.Lock()

    def watch(
        self,
        record: GateRecord,
        ask: Callable[[], GateRecord],
        decided: Callable[[GateRecord], None],
    ) -> None:
        """Watch ``record`` until it is decided (looked at in the next pass)."""
        with self._lock:
            self._watched[record.id] = Watched(ask, decided)

    def watching(self) -> list[str]:
        with self._lock:
            return list(self._watched)

    def look(self) -> None:
        """One pass over the watched gates; one broken gate does not stop the others."""
        with self._lock:
            watched = list(self._watched.items())
        for gid, item in watched:
            try:
                self._look(gid, item)
            except Exception as e:  # noqa: BLE001 - reported; the gate is looked at again
                self.log(f"gate {gid}: {e}")

    def _look(self, gid: str, item: Watched) -> None:
        try:
            version = self.store.version(gid)
        except FileNotFoundError:  # reset or reopened meanwhile: ask again
            self.log(f"gate {gid} was reset; asking again")
            record = item.ask()
            with self._lock:
                self._watched.pop(gid, None)
                self._watched[record.id] = Watched(item.ask, item.decided)
            return
        now = time.time()
        if version == item.version and now < item.look_at:
            return  # unchanged, and nothing falls due yet
        record = self.store.current(gid)
        if self.news is not None:
            record = self.news.send_safely(record)
        if record.decision is None:
            item.version = self.store.version(gid)  # after any news it claimed
            item.look_at = next_due(record, now)
            return
        with self._lock:
            self._watched.pop(gid, None)
        item.decided(record)

    def run(self, stop: threading.Event, after: Callable[[], bool] | None = None) -> None:
        """Look every ``poll`` seconds until ``stop`` is set, nothing is watched (and no
        ``after`` is given), or ``after`` (called after each pass) returns True."""
        while not stop.wait(self.poll):
            self.look()
            if after is not None:
                if after():
                    return
            elif not self.watching():
                return

    def until_decided(self) -> None:
        """Look until nothing is watched (``await``: one gate)."""
        stop = threading.Event()
        self.look()
        if self.watching():
            self.run(stop)
