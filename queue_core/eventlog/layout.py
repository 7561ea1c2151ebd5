"""The store's layout: which Redis structures hold what, and bringing a store written by older code up to it.

Layout 2 keeps, per aggregate, the list of the log positions its events sit at (``Keys.aggregate``);
layout 1 kept a stream per aggregate holding a copy of each event (over 4 KB each, almost all fixed).
The first process of this code to reach a layout-1 store moves every aggregate over, under a lock, then
records the layout; the others wait for it. Stop the processes of the older code first: they still
write layout 1.
"""

from __future__ import annotations

import time
from importlib import resources
from typing import Any

import redis
import structlog

from queue_core.errors import UnsafeStore
from queue_core.eventlog.store import EventStore

__all__ = ["LAYOUT", "ensure_layout"]

LAYOUT = b"2"
LOCK_SECONDS = 30  # renewed after every batch: a migrator that died frees the lock within this
WAIT_SECONDS = 600.0
SCAN_COUNT = 1000

log = structlog.get_logger("jobledger.store")


def ensure_layout(store: EventStore, wait_seconds: float = WAIT_SECONDS) -> None:
    """Return once the store is in this code's layout: record it on a new store, migrate an old one (or
    wait while another process does); raises ``UnsafeStore`` for a store written by newer code."""
    keys = store.keys
    found: Any = store.redis.get(keys.layout)
    if found == LAYOUT:
        return
    if found is not None and found > LAYOUT:
        raise UnsafeStore(f"the store's layout is {found.decode()}, newer than this jobledger's: upgrade jobledger")
    if not store.redis.exists(keys.log):
        return  # a new store (or one emptied for an import): nothing to move; a process meeting its log records it
    deadline = time.monotonic() + wait_seconds
    said = False
    while store.redis.get(keys.layout) != LAYOUT:
        try:
            if store.redis.set(keys.layout_lock, "1", nx=True, ex=LOCK_SECONDS):
                _migrate(store)
                return
        except redis.exceptions.NoPermissionError:
            pass  # a role that may not move keys (a worker, the console): the scheduler does it
        if not said:
            log.warning("waiting for the store's layout to be brought up to date by another process")
            said = True
        if time.monotonic() > deadline:
            raise UnsafeStore("the store's layout is older than this jobledger's and no process brought it up to date")
        time.sleep(0.2)


def _migrate(store: EventStore) -> None:
    keys = store.keys
    script = store.redis.register_script(
        resources.files("queue_core.eventlog").joinpath("lua", "migrate.lua").read_text()
    )
    legacy_prefix = keys.legacy_aggregate_stream("")
    moved = 0
    for batch in _scan_batches(store.redis, f"{legacy_prefix}*"):
        for key in batch:
            aggregate = key.decode()[len(legacy_prefix) :]
            moved += int(script(keys=[key, keys.aggregate(aggregate)]))
        store.redis.expire(keys.layout_lock, LOCK_SECONDS)
    store.redis.set(keys.layout, LAYOUT)
    store.redis.delete(keys.layout_lock)
    if moved:
        log.info("store layout brought up to date: aggregate streams became position lists", events=moved)


def _scan_batches(connection: redis.Redis, pattern: str) -> Any:
    cursor = 0
    while True:
        cursor, found = connection.scan(cursor, match=pattern, count=SCAN_COUNT)
        if found:
            yield found
        if cursor == 0:
            return
