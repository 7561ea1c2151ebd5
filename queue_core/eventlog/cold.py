"""The cold tier: what compaction moved out of Redis, in Parquet files that DuckDB reads.

Each compaction writes one batch of three files into the cold folder: the compacted aggregates' events
(aggregate, version, position, envelope), their read-model documents (model, entity, order, indexes,
document) and their run output (run, position, time, attempt, pipe, line). The folder and a manifest of
the batches (each file's SHA-256 and row count) are recorded in Redis (``Keys.cold``), so every process
finds the same files; a batch is listed only once its files are written, read back and counted.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis

from queue_core.errors import DamagedFile
from queue_core.eventlog.parquet import merge_parquet, query, write_parquet
from queue_core.keys import Keys

__all__ = ["ColdBatch", "ColdTier"]

FOLDER_FIELD = "folder"
BATCH_PREFIX = "batch:"
RETIRED_PREFIX = "retired:"  # a batch merged into another: its files go once no read can still use them
MERGE_AT = 16  # batches: one more file per table on every read, until they are merged into one
RETIRE_GRACE_SECONDS = 600.0
MERGE_LOCK_SECONDS = 600
TABLES: dict[str, dict[str, str]] = {
    "events": {
        "aggregate": "VARCHAR",
        "version": "BIGINT",
        "position": "VARCHAR",
        "ms": "UBIGINT",  # the position's two parts, to read a span of time in log order
        "seq": "UBIGINT",
        "envelope": "VARCHAR",
    },
    "documents": {
        "model": "VARCHAR",
        "entity": "VARCHAR",
        "ord": "DOUBLE",
        "indexes": "VARCHAR[]",
        "doc": "VARCHAR",
    },
    "lines": {
        "run": "VARCHAR",
        "position": "VARCHAR",
        "time": "VARCHAR",
        "attempt": "BIGINT",
        "pipe": "VARCHAR",
        "line": "VARCHAR",
        "dropped": "BIGINT",
    },
}


SORT_ORDER = {"events": "aggregate, version", "documents": "model, ord DESC", "lines": "run, position"}


@dataclass
class ColdBatch:
    """The rows one compaction moves to the cold tier, one list per table."""

    events: list[dict[str, Any]] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)

    def rows(self, table: str) -> list[dict[str, Any]]:
        return {"events": self.events, "documents": self.documents, "lines": self.lines}[table]


class ColdTier:
    """The cold tier of one store: its manifest in Redis, its Parquet files on disk, queried with DuckDB."""

    def __init__(self, connection: redis.Redis, keys: Keys | None = None) -> None:
        self.redis = connection
        self.keys = keys or Keys()

    # -- the manifest ---------------------------------------------------------------------------

    def folder(self) -> Path | None:
        """Where the cold files are (recorded by the first compaction); None: nothing was ever compacted."""
        value: Any = self.redis.hget(self.keys.cold, FOLDER_FIELD)
        return Path(value.decode()) if value else None

    def batches(self) -> dict[str, dict[str, Any]]:
        """Each batch's name and what the manifest records of its files (SHA-256 and rows, by table)."""
        raw: Any = self.redis.hgetall(self.keys.cold)
        return {
            k.decode().removeprefix(BATCH_PREFIX): orjson.loads(v)
            for k, v in raw.items()
            if k.decode().startswith(BATCH_PREFIX)
        }

    def _files(self, table: str) -> list[str]:
        folder = self.folder()
        if folder is None:
            return []
        return [str(folder / f"{name}-{table}.parquet") for name in sorted(self.batches())]

    # -- writing ----------------------------------------------------------------------------------

    def write(self, folder: Path, batch: ColdBatch) -> str:
        """Write a batch's files, read them back, then list the batch in the manifest; returns its name."""
        recorded = self.folder()
        if recorded is not None and recorded != folder:
            raise DamagedFile(f"the store's cold tier is in {recorded}, not {folder}")
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{time.time_ns()}"
        entry: dict[str, Any] = {}
        for table, columns in TABLES.items():
            path = folder / f"{name}-{table}.parquet"
            write_parquet(path, columns, batch.rows(table), SORT_ORDER[table])
            entry[table] = {"sha256": _sha256(path), "rows": len(batch.rows(table))}
            counted = query("SELECT count(*) FROM {files}", [str(path)], [], f"cold file {path.name}")
            if counted[0][0] != len(batch.rows(table)):
                raise DamagedFile(f"{path.name} does not hold the rows written to it")
        pipe = self.redis.pipeline(transaction=True)
        pipe.hsetnx(self.keys.cold, FOLDER_FIELD, str(folder))
        pipe.hset(self.keys.cold, f"{BATCH_PREFIX}{name}", orjson.dumps(entry))
        pipe.execute()
        return name

    def merge(self, at_least: int = MERGE_AT, grace_seconds: float = RETIRE_GRACE_SECONDS) -> str | None:
        """Merge the batches into one once there are ``at_least`` of them (each compaction adds one, and
        every read opens every file); the files merged are deleted ``grace_seconds`` later, once no read
        that listed them can still be going. Returns the merged batch's name, or None."""
        self._sweep(grace_seconds)
        batches, folder = self.batches(), self.folder()
        if len(batches) < at_least or folder is None:
            return None
        if not self.redis.set(self.keys.cold_merge_lock, "1", nx=True, ex=MERGE_LOCK_SECONDS):
            return None  # another process merges
        try:
            name = f"{time.time_ns()}"
            entry: dict[str, Any] = {}
            for table in TABLES:
                path = folder / f"{name}-{table}.parquet"
                files = [str(folder / f"{old}-{table}.parquet") for old in sorted(batches)]
                rows = merge_parquet(path, files, SORT_ORDER[table])
                if rows != sum(entry_[table]["rows"] for entry_ in batches.values()):
                    raise DamagedFile(f"{path.name} does not hold the rows of the batches merged into it")
                entry[table] = {"sha256": _sha256(path), "rows": rows}
            pipe = self.redis.pipeline(transaction=True)
            pipe.hset(self.keys.cold, f"{BATCH_PREFIX}{name}", orjson.dumps(entry))
            pipe.hdel(self.keys.cold, *(f"{BATCH_PREFIX}{old}" for old in batches))
            pipe.hset(self.keys.cold, mapping={f"{RETIRED_PREFIX}{old}": time.time() for old in batches})
            pipe.execute()
            return name
        finally:
            self.redis.delete(self.keys.cold_merge_lock)

    def _sweep(self, grace_seconds: float) -> None:
        """Delete the files of batches merged away more than ``grace_seconds`` ago."""
        folder = self.folder()
        raw: Any = self.redis.hgetall(self.keys.cold)
        for key, when in raw.items():
            name = key.decode()
            if not name.startswith(RETIRED_PREFIX) or time.time() - float(when) < grace_seconds:
                continue
            for table in TABLES:
                (folder or Path(".")).joinpath(f"{name.removeprefix(RETIRED_PREFIX)}-{table}.parquet").unlink(
                    missing_ok=True
                )
            self.redis.hdel(self.keys.cold, name)

    def damaged(self) -> list[str]:
        """Each cold file missing or whose SHA-256 is not the manifest's (empty: the tier is intact)."""
        folder = self.folder()
        problems = []
        for name, entry in self.batches().items():
            for table in TABLES:
                path = (folder or Path(".")) / f"{name}-{table}.parquet"
                if not path.exists():
                    problems.append(f"cold file {path.name} is missing")
                elif _sha256(path) != entry[table]["sha256"]:
                    problems.append(f"cold file {path.name} is damaged: its SHA-256 does not match the manifest")
        return problems

    # -- reading ------------------------------------------------------------------------------------

    def events(self, aggregates: Sequence[str]) -> dict[str, list[tuple[str, bytes]]]:
        """The compacted aggregates among ``aggregates`` and their events ``(position, envelope)``, oldest first."""
        params: list[Any]
        if len(aggregates) == 1:  # the usual read: one run, its row groups found by the file's statistics
            which, params = "aggregate = ?", [aggregates[0]]
        else:
            which, params = "aggregate IN (SELECT unnest(?))", [list(aggregates)]
        sql = "SELECT aggregate, position, envelope FROM {files} WHERE " + which + " ORDER BY aggregate, version"
        rows = self._query("events", sql, params)
        found: dict[str, list[tuple[str, bytes]]] = {}
        for aggregate, position, envelope in rows:
            found.setdefault(aggregate, []).append((position, envelope.encode()))
        return found

    def events_between(self, since_ms: int, until_ms: int) -> list[tuple[str, str]]:
        """The cold events appended from ``since_ms`` to ``until_ms`` (epoch milliseconds, inclusive),
        ``(position, envelope)`` in log order."""
        return self._query(
            "events",
            "SELECT position, envelope FROM {files} WHERE ms BETWEEN ? AND ? ORDER BY ms, seq",
            [since_ms, until_ms],
        )

    def entities(self, model: str) -> set[str]:
        """Every entity of ``model`` whose document is cold."""
        return {row[0] for row in self._query("documents", "SELECT entity FROM {files} WHERE model = ?", [model])}

    def documents(self, model: str, entities: Iterable[str]) -> dict[str, bytes]:
        """The cold documents of these entities of ``model`` (those that are cold), by entity."""
        rows = self._query(
            "documents",
            "SELECT entity, doc FROM {files} WHERE model = ? AND list_contains(?, entity)",
            [model, list(entities)],
        )
        return {entity: doc.encode() for entity, doc in rows}

    def window(
        self,
        model: str,
        indexes: list[str],
        count: int | None,
        older_than: float | None = None,
        newer_than: float | None = None,
    ) -> list[tuple[str, float, bytes]]:
        """Up to ``count`` cold documents in every one of ``indexes``, newest first: the newest older than
        ``older_than``, or the oldest newer than ``newer_than`` (a console page either side of a cursor)."""
        where = " AND ".join(["model = ?", *["list_contains(indexes, ?)" for _ in indexes]])
        params: list[Any] = [model, *indexes]
        if newer_than is not None:
            where, order, params = where + " AND ord > ?", "ASC", [*params, newer_than]
        elif older_than is not None:
            where, order, params = where + " AND ord < ?", "DESC", [*params, older_than]
        else:
            order = "DESC"
        limit = "" if count is None else f" LIMIT {int(count)}"
        sql = f"SELECT entity, ord, doc FROM {{files}} WHERE {where} ORDER BY ord {order}{limit}"
        rows = [(entity, order_, doc.encode()) for entity, order_, doc in self._query("documents", sql, params)]
        return rows[::-1] if newer_than is not None else rows

    def size(self, model: str, index: str, newer_than: float | None = None) -> int:
        """How many cold documents of ``model`` are in ``index`` (newer than ``newer_than``, if given)."""
        extra, params = ("", [model, index]) if newer_than is None else (" AND ord > ?", [model, index, newer_than])
        sql = "SELECT count(*) FROM {files} WHERE model = ? AND list_contains(indexes, ?)" + extra
        rows = self._query("documents", sql, params)
        return int(rows[0][0]) if rows else 0

    def lines(self, run_id: str) -> list[tuple[str, str, int, str, str, int]]:
        """A compacted run's output ``(position, time, attempt, pipe, line, dropped)``, oldest first."""
        return [
            tuple(row)
            for row in self._query(
                "lines",
                "SELECT position, time, attempt, pipe, line, dropped FROM {files} WHERE run = ? "
                "ORDER BY split_part(position, '-', 1)::UBIGINT, split_part(position, '-', 2)::UBIGINT",
                [run_id],
            )
        ]

    def _query(self, table: str, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        return query(sql, self._files(table), params, "the cold tier")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for chunk in iter(lambda: data.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
