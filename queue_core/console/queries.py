"""What the console's lists read: runs a page at a time by index score, the log backwards, the RQ side of clusters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from queue_core.domain.runs import public_view
from queue_core.eventlog.events import Recorded
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import ReadModels

__all__ = ["EventsPage", "RunsPage", "cluster_state", "events_page", "runs_page"]

SCAN_CHUNK = 500  # index entries read per round trip when two filters intersect
EVENTS_SCAN_LIMIT = 50_000  # log entries one audit page reads back at most before offering "older"
EVENTS_READ_BATCH = 1000  # log entries read back per round trip


@dataclass(frozen=True)
class RunsPage:
    """One page of runs, newest first, with the cursors either side and where it sits in the list."""

    runs: list[dict[str, Any]]
    newer: float | None  # cursor of the page before (None: this is the newest page)
    older: float | None  # cursor of the page after (None: this is the last page)
    total: int | None  # runs matching the filters (None: two filters, not counted)
    offset: int | None  # how many matching runs are newer than this page


def _index_of(status: str | None, definition: str | None, tag: str | None = None) -> list[str]:
    indexes = []
    if status:
        indexes.append(f"status:{status}")
    if definition:
        indexes.append(f"definition:{definition}")
    if tag:
        indexes.append(f"tag:{tag}")
    return indexes or ["all"]


def runs_page(
    models: ReadModels,
    status: str | None,
    definition: str | None,
    size: int,
    older_than: float | None = None,
    newer_than: float | None = None,
    tag: str | None = None,
) -> RunsPage:
    """A page of runs through the read models' sorted-set indexes: a few round trips whatever the number of runs.

    One filter is one index read by score; two filters walk the smaller index and keep the runs the
    other index also holds (ZMSCORE), a chunk at a time.
    """
    indexes = _index_of(status, definition, tag)
    if len(indexes) > 1:
        indexes.sort(key=lambda name: models.size("runs", name))
    driver, others = indexes[0], indexes[1:]
    found: list[tuple[str, float]] = []
    cursor_old, cursor_new = older_than, newer_than
    while len(found) < size + 1:
        chunk = models.window("runs", driver, SCAN_CHUNK if others else size + 1, cursor_old, cursor_new)
        if not chunk:
            break
        kept = chunk
        for other in others:
            scores = models.scores("runs", other, [entity for entity, _ in kept])
            kept = [entry for entry, score in zip(kept, scores, strict=True) if score is not None]
        if newer_than is not None:  # walking towards the newest: the page is the oldest of what lies above
            found = kept + found
            cursor_new = chunk[0][1]
        else:
            found += kept
            cursor_old = chunk[-1][1]
        if len(chunk) < (SCAN_CHUNK if others else size + 1):
            break
    any_cold = bool(models.redis.scard(models.keys.compacted))  # runs compaction moved out of Redis
    cold = _cold_window(models, indexes, size + 1, older_than, newer_than) if any_cold else {}
    if cold:  # runs compaction moved out of Redis: merged in by their order
        found = sorted(
            [*found, *((entity, order) for entity, (order, _) in cold.items())], key=lambda e: e[1], reverse=True
        )
        if newer_than is not None:
            found = found[-(size + 1) :] if len(found) > size + 1 else found
    if newer_than is not None:
        more_newer = len(found) > size
        found = found[-size:]
        more_older = True
    else:
        more_older = len(found) > size
        found = found[:size]
        more_newer = older_than is not None
    hot = [entity for entity, _ in found if entity not in cold]
    docs = dict(zip(hot, models.get_many("runs", hot), strict=True))
    docs.update({entity: orjson.loads(doc) for entity, (_, doc) in cold.items()})
    runs = [{**public_view(doc), "order": doc["order"]} for entity, _ in found if (doc := docs.get(entity))]
    total = _size(models, driver, any_cold) if not others else None
    offset = _size(models, driver, any_cold, found[0][1]) if found and not others else (0 if not others else None)
    return RunsPage(
        runs=runs,
        newer=found[0][1] if found and more_newer else None,
        older=found[-1][1] if found and more_older else None,
        total=total,
        offset=offset,
    )


def _cold_window(
    models: ReadModels, indexes: list[str], count: int, older_than: float | None, newer_than: float | None
) -> dict[str, tuple[float, bytes]]:
    """The cold runs of a page, by entity."""
    rows = models.store.cold.window("runs", indexes, count, older_than, newer_than)
    return {entity: (order, doc) for entity, order, doc in rows}


def _size(models: ReadModels, index: str, any_cold: bool, newer_than: float | None = None) -> int:
    """How many runs an index holds (newer than a cursor), hot and cold."""
    hot = models.size("runs", index, newer_than=newer_than)
    if not any_cold:
        return hot
    return hot + models.store.cold.size("runs", index, newer_than)


@dataclass(frozen=True)
class EventsPage:
    """Events newest first; ``older``: where the next page starts (exclusive), None at the start of the log."""

    events: list[Recorded]
    older: str | None
    scanned: int


def events_page(
    store: EventStore,
    limit: int,
    type: str | None = None,
    aggregate: str | None = None,
    since: str = "-",
    until: str = "+",
) -> EventsPage:
    """The newest ``limit`` events from ``until`` back to ``since`` (inclusive), read backwards.

    A rare type in a long log could mean reading all of it: a page stops after reading
    ``EVENTS_SCAN_LIMIT`` entries and says where to go on from. Only what Redis holds is read (after a
    trim, the archived part is read by ``jobledger events``).
    """
    found: list[Recorded] = []
    high, scanned, step = until, 0, limit
    while len(found) < limit and scanned < EVENTS_SCAN_LIMIT:
        # Read back no more than the page can use: what is left of it (every entry counts when not
        # filtering by type), else twice as much each round, up to a full batch.
        wanted = limit - len(found) if type is None else step
        count = min(EVENTS_READ_BATCH, EVENTS_SCAN_LIMIT - scanned, wanted)
        step *= 2
        entries = store.newest(count, aggregate, until=high, since=since)
        if not entries:
            return EventsPage(found, None, scanned)
        for rec in entries:
            scanned += 1
            if type is None or rec.type == type:
                found.append(rec)
                if len(found) == limit:
                    break
        high = f"({found[-1].position if len(found) == limit else entries[-1].position}"
        if len(entries) < count and len(found) < limit:
            return EventsPage(found, None, scanned)
    return EventsPage(found, high[1:], scanned)


def cluster_state(redis: Any, name: str) -> dict[str, Any]:
    """A cluster's RQ side: jobs waiting in its queue, retries waiting in rq-scheduler aside, and its workers."""
    from rq import Queue, Worker

    queue = Queue(name, connection=redis)
    workers = []
    for worker in Worker.all(queue=queue):
        heartbeat = worker.last_heartbeat
        workers.append(
            {
                "name": worker.name,
                "state": worker.get_state(),
                "job": worker.get_current_job_id(),
                "heartbeat": heartbeat.isoformat(timespec="seconds") if heartbeat else None,
            }
        )
    return {"queued": queue.count, "listening": sorted(workers, key=lambda w: w["name"])}
