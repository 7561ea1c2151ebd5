"""Compaction: what lies beyond the hot window moves out of Redis.

Runs ended longer ago than the window move into the cold tier: their position list, read-model document,
index entries and output go, once their events, document and output are in a cold batch listed in the
manifest; reads of a run look in Redis, then in the cold tier. The log's entries older than the window go
to the archive (its closed segments uploaded, then trimmed from Redis once read back and matched).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from queue_core.domain.runs import TERMINAL
from queue_core.errors import InvalidInput, TrimRefused
from queue_core.eventlog.archive import (
    DEFAULT_SEGMENT_SIZE,
    ArchiveLocation,
    archive_log,
    read_manifest,
    trim_log,
    trim_point,
)
from queue_core.eventlog.cold import ColdBatch
from queue_core.eventlog.positions import position_key
from queue_core.eventlog.runlog import RunLog
from queue_core.eventlog.seals import LedgerSigner
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import ReadModels
from queue_core.readmodels.projections import PROJECTIONS
from queue_core.settings import Settings
from queue_core.timefmt import parse_utc

__all__ = ["COMPACT_BATCH", "Compacted", "archive_location", "compact_runs", "trim_to_window"]

COMPACT_BATCH = 20_000  # runs per cold batch (its files): fewer, larger files for DuckDB to read
DROP_CHUNK = 1000  # runs dropped from Redis per script call, so that Redis is never held long
RUNS = "runs"
_RUN_INDEXES = next(p.indexes for p in PROJECTIONS if p.model == RUNS)


@dataclass(frozen=True)
class Compacted:
    """What one compaction moved: runs, their events and output lines, and the batches written."""

    runs: int
    events: int
    lines: int
    batches: int


def compact_runs(
    store: EventStore,
    read_models: ReadModels,
    run_log: RunLog,
    folder: Path,
    window: timedelta,
    keep: int | None = None,
    now: datetime | None = None,
    limit: int | None = None,
) -> Compacted:
    """Move the runs that ended before ``now - window`` (and, with ``keep``, the ended runs beyond the newest
    ``keep``) to the cold tier in ``folder``, the oldest first and at most ``limit`` of them; runs of a
    workflow run still going stay hot."""
    read_models.catch_up()
    cutoff = (now or datetime.now(UTC)) - window
    chosen = _chosen(read_models, cutoff, keep, limit)
    totals = [0, 0, 0, 0]
    for start in range(0, len(chosen), COMPACT_BATCH):
        moved = _compact_batch(store, read_models, run_log, folder, chosen[start : start + COMPACT_BATCH])
        totals = [a + b for a, b in zip(totals, (*moved, 1), strict=True)]
    if totals[0]:
        store.cold.merge()
    return Compacted(*totals)


def _chosen(read_models: ReadModels, cutoff: datetime, keep: int | None, limit: int | None) -> list[dict[str, Any]]:
    """The ended runs to move, oldest first, at most ``limit`` (read a page of documents at a time)."""
    ended = sorted(
        (pair for status in TERMINAL for pair in read_models.scored(RUNS, f"status:{status}")),
        key=lambda pair: pair[1],
    )
    beyond_kept = {entity for entity, _ in ended[: max(0, len(ended) - keep)]} if keep is not None else set()
    chosen: list[dict[str, Any]] = []
    for start in range(0, len(ended), COMPACT_BATCH):
        ids = [entity for entity, _ in ended[start : start + COMPACT_BATCH]]
        docs = [doc for doc in read_models.get_many(RUNS, ids) if doc and doc.get("finished_at")]
        going = _going_workflow_runs(read_models, docs)
        chosen += [
            doc
            for doc in docs
            if (parse_utc(doc["finished_at"]) <= cutoff or doc["id"] in beyond_kept)
            and doc.get("workflow_run") not in going
        ]
        if limit is not None and len(chosen) >= limit:
            return chosen[:limit]
    return chosen


def _going_workflow_runs(read_models: ReadModels, docs: list[dict[str, Any]]) -> set[str]:
    ids = sorted({doc["workflow_run"] for doc in docs if doc.get("workflow_run")})
    found = read_models.get_many("workflow_runs", ids)
    return {wid for wid, doc in zip(ids, found, strict=True) if doc is None or doc.get("status") == "RUNNING"}


def _compact_batch(
    store: EventStore,
    read_models: ReadModels,
    run_log: RunLog,
    folder: Path,
    docs: list[dict[str, Any]],
) -> tuple[int, int, int]:
    events = store.envelopes_many(doc["id"] for doc in docs)
    pipe = store.redis.pipeline(transaction=False)
    for doc in docs:
        pipe.exists(store.keys.run_log(doc["id"]))
    with_output = {doc["id"] for doc, found in zip(docs, pipe.execute(), strict=True) if found}
    batch = ColdBatch()
    for doc in docs:
        run_id = doc["id"]
        for version, (position, envelope) in enumerate(events[run_id], start=1):
            ms, seq = position_key(position)
            batch.events.append(
                {
                    "aggregate": run_id,
                    "version": version,
                    "position": position,
                    "ms": ms,
                    "seq": seq,
                    "envelope": envelope.decode(),
                }
            )
        indexes = sorted(_RUN_INDEXES(doc))
        batch.documents.append(
            {
                "model": RUNS,
                "entity": run_id,
                "ord": doc["order"],
                "indexes": indexes,
                "doc": orjson.dumps(doc).decode(),
            }
        )
        if run_id not in with_output:  # most runs of a busy system print nothing: no round trip for them
            continue
        dropped = run_log.dropped(run_id)
        for line in run_log.read(run_id):
            batch.lines.append(
                {
                    "run": run_id,
                    "position": line.position,
                    "time": line.time,
                    "attempt": line.attempt,
                    "pipe": line.stream,
                    "line": line.line,
                    "dropped": dropped,
                }
            )
    store.cold.write(folder, batch)
    script = store.redis.register_script(
        resources.files("queue_core.eventlog").joinpath("lua", "compact.lua").read_text()
    )
    dropped_ids: set[str] = set()
    for start in range(0, len(docs), DROP_CHUNK):
        keys: list[str] = [store.keys.read_model(read_models.namespace, RUNS), store.keys.kept, store.keys.compacted]
        args: list[Any] = []
        for doc in docs[start : start + DROP_CHUNK]:
            indexes = sorted(_RUN_INDEXES(doc))
            keys += [store.keys.aggregate(doc["id"]), store.keys.run_log(doc["id"])]
            keys += [store.keys.index(read_models.namespace, RUNS, index) for index in indexes]
            args += [doc["id"], len(events[doc["id"]]), len(indexes)]
        dropped_ids |= {i.decode() for i in script(keys=keys, args=args)}
    pipe = store.redis.pipeline(transaction=False)  # the ended attempts' delivery counters are of no more use
    for doc in docs:
        if doc["id"] in dropped_ids:
            for attempt in range(1, doc["attempt"] + 1):
                pipe.delete(store.keys.deliveries(doc["id"], attempt))
    pipe.execute()
    return (
        len(dropped_ids),
        sum(len(events[i]) for i in dropped_ids),
        sum(1 for line in batch.lines if line["run"] in dropped_ids),
    )


def trim_to_window(
    store: EventStore,
    read_models: ReadModels,
    location: ArchiveLocation,
    window: timedelta,
    signer: LedgerSigner | None,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    now: datetime | None = None,
) -> int:
    """Archive the log's closed segments, then drop from Redis what the archive holds and the window does not
    (entries of aggregates still held here keep a copy: see ``trim_log``); returns the entries dropped."""
    archive_log(store, location, segment_size, signer=signer)
    segments = read_manifest(location)
    if not segments:
        return 0
    start = int(((now or datetime.now(UTC)) - window).timestamp() * 1000)
    ms, seq = position_key(segments[-1].last)
    before = min((start, 0), (ms, seq + 1))
    read_models.catch_up()  # the live read models must have folded what leaves Redis
    try:
        return trim_log(store, location, f"{before[0]}-{before[1]}")
    except TrimRefused:
        return 0  # nothing before that point, or a reader still behind: the next pass tries again


def archive_location(store: EventStore, settings: Settings) -> ArchiveLocation:
    """Where the log is archived: where it was trimmed against, else ``JOBLEDGER_ARCHIVE`` (default: a folder)."""
    point = trim_point(store)
    if point is not None:
        return point[1]
    where = settings.archive or str(settings.home / "archive")
    if where.startswith("s3://"):
        bucket, _, prefix = where.removeprefix("s3://").partition("/")
        if not bucket:
            raise InvalidInput(f"{where!r} names no bucket", "JOBLEDGER_ARCHIVE")
        return ArchiveLocation(bucket, prefix, settings.archive_endpoint_url)
    return ArchiveLocation("", "", None, str(Path(where).expanduser().resolve()))
