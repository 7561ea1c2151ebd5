"""One follower of the log shared by every open live page of a console: it reads the log with a blocking read and
hands each batch's summary (a ``Change``) to every listening page."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass

import orjson

from queue_core.eventlog.events import Recorded
from queue_core.eventlog.store import EventStore

__all__ = ["MISSED_READ", "Change", "LogWatch"]

log = logging.getLogger("jobledger.console")

WATCH_BLOCK_MS = 5000  # the shared follower's blocking read: one Redis call per 5 s when nothing happens
MAX_AGGREGATES = 200  # aggregates named in one message; beyond, "more" tells the page to redraw anyway
MISSED_READ = 1000  # events read at once (and read back for a page that reconnects after missing some)


@dataclass(frozen=True)
class Change:
    """What happened in the log up to ``position``: the event types and the aggregates they changed."""

    position: str
    types: frozenset[str]
    aggregates: frozenset[str]
    more: bool = False

    @classmethod
    def of(cls, events: list[Recorded], more: bool = False) -> Change:
        aggregates = frozenset(rec.aggregate for rec in events)
        more = more or len(aggregates) > MAX_AGGREGATES
        return cls(events[-1].position, frozenset(rec.type for rec in events), aggregates, more)

    def merge(self, other: Change) -> Change:
        aggregates = self.aggregates | other.aggregates
        more = self.more or other.more or len(aggregates) > MAX_AGGREGATES
        return Change(other.position, self.types | other.types, aggregates, more)

    def message(self) -> str:
        data = {
            "position": self.position,
            "types": sorted(self.types),
            "aggregates": [] if self.more else sorted(self.aggregates),
            "more": self.more,
        }
        return f"id: {self.position}\nevent: change\ndata: {orjson.dumps(data).decode()}\n\n"


class LogWatch:
    """One blocking reader of the log for every open page of this console, running while any page listens."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._listeners: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Change]]] = set()
        self._running = False

    def listen(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Queue[Change]]:
        listener = (asyncio.get_running_loop(), asyncio.Queue[Change]())
        with self._lock:
            self._listeners.add(listener)
            if not self._running:
                self._running = True
                threading.Thread(target=self._follow, name="console-log-watch", daemon=True).start()
        return listener

    def leave(self, listener: tuple[asyncio.AbstractEventLoop, asyncio.Queue[Change]]) -> None:
        with self._lock:
            self._listeners.discard(listener)

    def _follow(self) -> None:
        after = self.store.last_position()
        while True:
            with self._lock:
                if not self._listeners:
                    self._running = False
                    return
                listeners = list(self._listeners)
            try:
                events = self.store.follow(after, WATCH_BLOCK_MS, count=MISSED_READ)
            except Exception:  # the store went away for a moment: the pages keep their streams, we try again
                log.warning("following the log for live pages failed; trying again", exc_info=True)
                time.sleep(1)
                continue
            if not events:
                continue
            after = events[-1].position
            change = Change.of(events)
            for loop, queue in listeners:
                loop.call_soon_threadsafe(queue.put_nowait, change)
