"""``snakemake-gate serve`` as the live process of a whole store: every ``interval``
seconds it sends what is due of any gate (:mod:`.news`) — the decision made with the CLI
while no run was watching, a reminder, an escalation — and applies timeouts.

A gate whose files did not change and for which nothing falls due costs two ``stat``\\ s
per round (10,000 gates: some tens of milliseconds); only the others are read.
"""

import logging
import os
import threading
import time
from dataclasses import dataclass

from .errors import GateError
from .news import News, next_due
from .storefs import UnsafeFile

logger = logging.getLogger(__name__)

INTERVAL = 15.0


@dataclass
class _Seen:
    version: tuple[int, int]
    look_at: float


class NewsLoop:
    def __init__(self, news: News, interval: float = INTERVAL) -> None:
        self.news = news
        self.store = news.store
        self.interval = interval
        self._seen: dict[str, _Seen] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gate-news", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            try:
                self.round()
            except Exception:  # a broken store file must not end the loop
                logger.exception("gate news: a round failed")
            if self._stop.wait(self.interval):
                return

    def round(self, now: float | None = None) -> None:
        """Look at every gate once; send what is due."""
        with self.store.tree.dir("gates") as g:
            ids = [n[:-5] for n in os.listdir(g) if n.endswith(".json") and not n.startswith(".")]
        self._seen = {gid: seen for gid, seen in self._seen.items() if gid in ids}
        for gid in ids:
            if self._stop.is_set():
                return
            try:
                self._look(gid, time.time() if now is None else now)
            except (GateError, UnsafeFile, OSError) as e:  # reported by list too
                logger.debug("gate news: %s: %s", gid, e)

    def _look(self, gid: str, now: float) -> None:
        version = self.store.version(gid)
        seen = self._seen.get(gid)
        if seen is not None and seen.version == version and now < seen.look_at:
            return
        record = self.news.send(self.store.current(gid), now)
        self._seen[gid] = _Seen(self.store.version(gid), next_due(record, now))
