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

import orjson
import redis
import structlog

from queue_core.errors import UnsafeStore
from queue_core.eventlog.acl import reads_only, writes_everything
from queue_core.eventlog.store import EventStore

__all__ = ["LAYOUT", "ensure_layout"]

LAYOUT = b"2"
LOCK_SECONDS = 30  # renewed after every batch: a migrator that died frees the lock within this
WAIT_SECONDS = 600.0
SCAN_COUNT = 1000

log = structlog.get_logger("jobledger.store")


def ensure_layout(store: EventStore, wait_seconds: float = WAIT_SECONDS) -> None:
    """Return once the store is in this code's layout: recognise a current one, migrate an old one (or wait
    while another process does); raises ``UnsafeStore`` for a store written by newer code."""
    keys = store.keys
    found: Any = store.redis.get(keys.layout)
    if found == LAYOUT:
        return
    if found is not None and found > LAYOUT:
        raise UnsafeStore(f"the store's layout is {found.decode()}, newer than this jobledger's: upgrade jobledger")
    witness = _first_aggregate(store)
    if witness is None:
        return  # a new store (or one emptied for an import): nothing to move
    if store.redis.type(keys.legacy_aggregate_stream(witness)) != b"stream":
        _record(store)  # written by this code (the migration moves the first aggregate last)
        return
    deadline = time.monotonic() + wait_seconds
    said = False
    may_move = writes_everything(store.redis)  # a worker or the console waits for the scheduler (or a client)
    while store.redis.get(keys.layout) != LAYOUT:
        if may_move and store.redis.set(keys.layout_lock, "1", nx=True, ex=LOCK_SECONDS):
            _migrate(store, witness)
            return
        if not said:
            log.warning("waiting for the store's layout to be brought up to date by another process")
            said = True
        if time.monotonic() > deadline:
            raise UnsafeStore("the store's layout is older than this jobledger's and no process brought it up to date")
        time.sleep(0.2)


def _first_aggregate(store: EventStore) -> str | None:
    """The aggregate of the log's oldest entry in Redis: the older layout kept a stream for it."""
    oldest: Any = store.redis.xrange(store.keys.log, count=1)
    if not oldest:
        return None
    return str(orjson.loads(oldest[0][1][b"e"])["agg"])


def _record(store: EventStore) -> None:
    if not reads_only(store.redis):  # a read-only role's next start looks again, as cheaply
        store.redis.set(store.keys.layout, LAYOUT)


def _migrate(store: EventStore, witness: str) -> None:
    keys = store.keys
    script = store.redis.register_script(
        resources.files("queue_core.eventlog").joinpath("lua", "migrate.lua").read_text()
    )
    legacy_prefix = keys.legacy_aggregate_stream("")
    moved = 0
    for batch in _scan_batches(store.redis, f"{legacy_prefix}*"):
        for key in batch:
            aggregate = key.decode()[len(legacy_prefix) :]
            if aggregate != witness:
                moved += int(script(keys=[key, keys.aggregate(aggregate)]))
        store.redis.expire(keys.layout_lock, LOCK_SECONDS)
    # The first aggregate last: until it is moved, a process starting sees the older layout and waits.
    moved += int(script(keys=[keys.legacy_aggregate_stream(witness), keys.aggregate(witness)]))
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
