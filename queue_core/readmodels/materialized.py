"""Read models in Redis: documents and indexes per namespace, moved forward from the log by a checkpoint."""

from __future__ import annotations

import gc
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson
import structlog

from queue_core.errors import StopRequested, StoreUnderMaintenance
from queue_core.eventlog.acl import reads_only
from queue_core.eventlog.archive import event_batches, replay_batches
from queue_core.eventlog.maintenance_mode import check_maintenance
from queue_core.eventlog.positions import position_key
from queue_core.eventlog.renewed_lease import RenewedLease, holder_name
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.projections import FOLD_VERSION, PROJECTIONS, QUARANTINE, fold, quarantine_key

__all__ = ["LIVE", "ReadModels", "Rebuilt", "VerifyResult", "rebuild", "rebuild_live", "verify"]


def _script(name: str) -> str:
    """The text of one of the read models' Lua scripts (the commit of a batch, the swap after a rebuild)."""
    return resources.files("queue_core.readmodels").joinpath("lua", name).read_text()


log = structlog.get_logger("jobledger.readmodels")
LIVE = "live"
CATCH_UP_BATCH = 1000
WRITE_CHUNK = 2000
COLD_MODEL = "runs"  # the read model whose documents compaction moves to the cold tier
# The rebuild lock is a lease its holder renews every few seconds: a rebuilder that dies frees it this soon.
REBUILD_LEASE_SECONDS = 6.0
REBUILD_WAIT_POLL_SECONDS = 0.1
REBUILD_WAIT_NOTE_SECONDS = 10.0
_BY_MODEL = {p.model: p for p in PROJECTIONS}

Doc = dict[str, Any]


def dumps(doc: Doc) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


class ReadModels:
    """The read models of one namespace: ``live`` for the system, others for scratch rebuilds."""

    def __init__(self, store: EventStore, namespace: str = LIVE) -> None:
        self.store = store
        self.redis = store.redis
        self.keys = store.keys
        self.namespace = namespace
        self._commit = self.redis.register_script(_script("commit.lua"))
        self._fold_checked = namespace != LIVE  # scratch namespaces are always folded by this code
        # A read-only role's user (the console, metrics) folds nothing: the scheduler keeps the models current.
        self.read_only = reads_only(self.redis)
        # Asked while waiting for another process's rebuild: a process told to stop gives the wait up.
        self.stop_requested: Callable[[], bool] = lambda: False

    # -- keys ---------------------------------------------------------------------------------

    def _hash(self, model: str) -> str:
        return self.keys.read_model(self.namespace, model)

    def _index(self, model: str, index: str) -> str:
        return self.keys.index(self.namespace, model, index)

    def checkpoint(self) -> str:
        value: Any = self.redis.get(self.keys.checkpoint(self.namespace))
        return value.decode() if value else ""

    # -- moving forward -----------------------------------------------------------------------

    def catch_up(self, until: str = "+") -> str:
        """Fold every event after the checkpoint (up to ``until``; by default the log's head as this call
        starts, so a steady stream of appends cannot keep it folding) into the documents; return the checkpoint."""
        if self.read_only:
            return self.checkpoint()
        if not self._fold_checked:
            self._ensure_current_fold()
        while True:
            start = self.checkpoint()
            events = next(event_batches(self.store, after=start or "0", until=until, batch=CATCH_UP_BATCH), [])
            if not events:
                return start
            if until == "+" and len(events) == CATCH_UP_BATCH:  # more to fold: up to the head as it is now
                until = self.store.last_position()
            touched: dict[str, set[str]] = {}
            for rec in events:
                for projection in PROJECTIONS:
                    if rec.type in projection.types:
                        entity = projection.entity(rec)
                        touched.setdefault(projection.model, set()).add(entity)
                        touched.setdefault(QUARANTINE, set()).add(quarantine_key(projection.model, entity))
            before = self._load(touched)
            after = fold({m: dict(d) for m, d in before.items()}, events)
            outcome = self._commit_changes(start, events[-1].position, before, after)
            if outcome == "OK":
                self._say_quarantined(before.get(QUARANTINE, {}), after.get(QUARANTINE, {}))
            elif outcome == "MAINTENANCE" and not self._maintenance_ended():
                return start  # an import, restore or rebuild writes the read models: this reader folds nothing

    def _say_quarantined(self, before: dict[str, Doc | None], after: dict[str, Doc | None]) -> None:
        """A log line, once (by the process whose commit quarantined it), for each newly quarantined entity."""
        for key, entry in after.items():
            if entry is not None and before.get(key) is None:
                log.error("quarantined: its fold raised; everything else goes on", **entry)

    def _maintenance_ended(self) -> bool:
        """Whether the store is free of maintenance after all (a dead rebuild's marker is cleared here)."""
        try:
            check_maintenance(self.store)
        except StoreUnderMaintenance:
            return False
        return True

    def _ensure_current_fold(self) -> None:
        """Rebuild the live read models once if other code folded them (jobledger was upgraded); not while an
        import, restore or rebuild holds the store (it writes them itself: this is checked again next time)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.keys.folded_by(self.namespace))
        pipe.get(self.keys.checkpoint(self.namespace))
        pipe.exists(self.keys.maintenance)
        folded_by, checkpoint, held = pipe.execute()
        if held and not self._maintenance_ended():
            return
        if folded_by is None and not checkpoint:
            self.redis.set(self.keys.folded_by(self.namespace), FOLD_VERSION, nx=True)  # nothing folded yet
        elif (folded_by or b"").decode() != FOLD_VERSION:
            lease = RenewedLease(self.redis, self.keys.rebuild_lock, holder_name("rebuild"), REBUILD_LEASE_SECONDS)
            if lease.acquire():
                with lease:
                    log.info("rebuilding the read models: they were folded by other code (an upgrade)")
                    try:
                        rebuild_live(self.store, guarded=True)
                    except StoreUnderMaintenance:
                        return  # an import or restore began meanwhile: it writes them; checked again next time
            else:  # another process is rebuilding: wait for it (or for its lease to lapse, if it died)
                self._wait_for_rebuild()
                return self._ensure_current_fold()
        self._fold_checked = True

    def _wait_for_rebuild(self) -> None:
        """Wait while another process holds the rebuild lock; ``StopRequested`` if this one is told to stop."""
        next_note = 0.0
        while True:
            holder: Any = self.redis.get(self.keys.rebuild_lock)
            if holder is None:
                return
            if self.stop_requested():
                raise StopRequested("stopped while waiting for another process's rebuild of the read models")
            if time.monotonic() >= next_note:
                log.info("waiting for another process's rebuild of the read models", holder=holder.decode())
                next_note = time.monotonic() + REBUILD_WAIT_NOTE_SECONDS
            time.sleep(REBUILD_WAIT_POLL_SECONDS)

    def _load(self, touched: dict[str, set[str]]) -> dict[str, dict[str, Doc | None]]:
        pipe = self.redis.pipeline(transaction=False)
        order = [(model, sorted(ids)) for model, ids in touched.items()]
        for model, ids in order:
            pipe.hmget(self._hash(model), ids)
        loaded: dict[str, dict[str, Doc | None]] = {}
        for (model, ids), values in zip(order, pipe.execute(), strict=True):
            loaded[model] = {i: (orjson.loads(v) if v else None) for i, v in zip(ids, values, strict=True)}
        return loaded

    def _commit_changes(
        self,
        start: str,
        new_checkpoint: str,
        before: dict[str, dict[str, Doc | None]],
        after: dict[str, dict[str, Doc | None]],
    ) -> str:
        """Commit one folded batch: ``OK``, ``CONFLICT`` (another process moved the checkpoint) or
        ``MAINTENANCE`` (the live namespace while the store is held: see commit.lua)."""
        keys = [self.keys.checkpoint(self.namespace), self.keys.maintenance]
        key_index: dict[str, int] = {}

        def k(name: str) -> int:
            if name not in key_index:
                keys.append(name)
                key_index[name] = len(keys)
            return key_index[name]

        ops: list[Any] = []
        for model, docs in after.items():
            projection = _BY_MODEL[model]
            for entity, doc in docs.items():
                old = before.get(model, {}).get(entity)
                if doc == old:
                    continue
                old_ix = projection.indexes(old) if old else {}
                new_ix = projection.indexes(doc) if doc else {}
                if doc is None:
                    ops += ["D", k(self._hash(model)), entity, ""]
                else:
                    ops += ["H", k(self._hash(model)), entity, dumps(doc)]
                for name in old_ix.keys() - new_ix.keys():
                    ops += ["R", k(self._index(model, name)), entity, ""]
                for name, score in new_ix.items():
                    if old_ix.get(name) != score:
                        ops += ["Z", k(self._index(model, name)), entity, score]
        guarded = "1" if self.namespace == LIVE else "0"
        reply = self._commit(keys=keys, args=[start, new_checkpoint, guarded, *ops])
        return reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])

    def write_all(self, state: dict[str, dict[str, Doc | None]], checkpoint: str) -> None:
        """Write a whole folded state into this (empty) namespace, then its checkpoint."""
        # One HSET and one ZADD per key per chunk, not one command per document and index entry.
        pipe = self.redis.pipeline(transaction=False)
        for model, docs in state.items():
            projection = _BY_MODEL[model]
            live = [(entity, doc) for entity, doc in docs.items() if doc is not None]
            for start in range(0, len(live), WRITE_CHUNK):
                chunk = live[start : start + WRITE_CHUNK]
                indexes: dict[str, dict[str, float]] = {}
                for entity, doc in chunk:
                    for name, score in projection.indexes(doc).items():
                        indexes.setdefault(name, {})[entity] = score
                pipe.hset(self._hash(model), mapping={entity: dumps(doc) for entity, doc in chunk})
                for name, members in indexes.items():
                    pipe.zadd(self._index(model, name), members)
                pipe.execute()
        pipe.set(self.keys.checkpoint(self.namespace), checkpoint)
        pipe.set(self.keys.folded_by(self.namespace), FOLD_VERSION)
        pipe.execute()

    def drop(self) -> None:
        """Delete every key of this namespace."""
        batch = []
        for key in self.redis.scan_iter(match=self.keys.namespace_pattern(self.namespace), count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                self.redis.delete(*batch)
                batch = []
        if batch:
            self.redis.delete(*batch)

    # -- reading ------------------------------------------------------------------------------

    def get(self, model: str, entity: str) -> Doc | None:
        """One entity's document (a compacted run's from the cold tier); None if it has none."""
        return self.get_many(model, [entity])[0]

    def get_many(self, model: str, entities: list[str]) -> list[Doc | None]:
        """Several entities' documents, in order; a compacted run's from the cold tier (one query for those)."""
        if not entities:
            return []
        values: list[Any] = self.redis.hmget(self._hash(model), entities)
        missing = [e for e, v in zip(entities, values, strict=True) if not v]
        if missing and model == COLD_MODEL and self.namespace == LIVE:
            compacted: Any = self.redis.smismember(self.keys.compacted, missing)
            cold = [e for e, is_cold in zip(missing, compacted, strict=True) if is_cold]
            found = self.store.cold.documents(model, cold) if cold else {}
            values = [v or found.get(e) for e, v in zip(entities, values, strict=True)]
        return [orjson.loads(v) if v else None for v in values]

    def all(self, model: str) -> dict[str, Doc]:
        raw: Any = self.redis.hgetall(self._hash(model))
        return {k.decode(): orjson.loads(v) for k, v in raw.items()}

    def quarantined(self) -> list[Doc]:
        """Every quarantined entity (its fold raised), oldest first; see ``projections.fold``."""
        if not self.redis.hlen(self._hash(QUARANTINE)):  # the usual answer, in one cheap command
            return []
        return sorted(self.all(QUARANTINE).values(), key=lambda entry: position_key(entry["position"]))

    def newest(self, model: str, index: str, offset: int = 0, count: int = 100) -> list[str]:
        ids: Any = self.redis.zrevrange(self._index(model, index), offset, offset + count - 1)
        return [i.decode() for i in ids]

    def scored(self, model: str, index: str) -> list[tuple[str, float]]:
        """Every entity of an index with its score, oldest first."""
        found: Any = self.redis.zrange(self._index(model, index), 0, -1, withscores=True)
        return [(entity.decode(), score) for entity, score in found]

    def window(
        self,
        model: str,
        index: str,
        count: int,
        older_than: float | None = None,
        newer_than: float | None = None,
        floor: float | None = None,
    ) -> list[tuple[str, float]]:
        """Up to ``count`` entities of an index with their scores, newest first: the newest ones older than
        ``older_than``, or the oldest ones newer than ``newer_than`` (a page either side of a cursor).

        A range by score: as fast on the last page of a large index as on the first. ``floor``: no entity scoring
        below it (a time range's start).
        """
        key = self._index(model, index)
        found: Any
        if newer_than is not None:
            found = self.redis.zrangebyscore(key, f"({newer_than}", "+inf", start=0, num=count, withscores=True)
            found = list(reversed(found))
        else:
            high = f"({older_than}" if older_than is not None else "+inf"
            low = floor if floor is not None else "-inf"
            found = self.redis.zrevrangebyscore(key, high, low, start=0, num=count, withscores=True)
        return [(entity.decode(), score) for entity, score in found]

    def size(self, model: str, index: str, newer_than: float | None = None) -> int:
        """How many entities an index holds (with ``newer_than``: how many score above it)."""
        key = self._index(model, index)
        if newer_than is None:
            return int(self.redis.zcard(key))
        return int(self.redis.zcount(key, f"({newer_than}", "+inf"))

    def counts(self, model: str, indexes: list[str], edges: list[float]) -> dict[str, list[int]]:
        """How many entities of each index score in each range between consecutive ``edges`` (low inclusive), in
        one round trip: counts by score, as cheap over a million entities as over ten."""
        pipe = self.redis.pipeline(transaction=False)
        for index in indexes:
            key = self._index(model, index)
            for low, high in itertools.pairwise(edges):
                pipe.zcount(key, low, f"({high}")
        found = [int(n) for n in pipe.execute()]
        per = max(0, len(edges) - 1)
        return {index: found[i * per : (i + 1) * per] for i, index in enumerate(indexes)}

    def scores(self, model: str, index: str, entities: list[str]) -> list[float | None]:
        """Each entity's score in an index, None where it is not in it."""
        if not entities:
            return []
        found: Any = self.redis.zmscore(self._index(model, index), entities)
        return list(found)

    def snapshot(self) -> Iterator[tuple[str, Any]]:
        """Every document and index entry of the namespace, keyed independently of the namespace."""
        for projection in PROJECTIONS:
            docs: Any = self.redis.hgetall(self._hash(projection.model))
            for entity, value in sorted(docs.items()):
                yield f"{projection.model}/{entity.decode()}", value
        prefix = self.keys.index_prefix(self.namespace)
        found: Any = self.redis.scan_iter(match=prefix + "*", count=1000)
        index_keys = sorted(k.decode() for k in found)
        for key in index_keys:
            members: Any = self.redis.zrange(key, 0, -1, withscores=True)
            for member, score in members:
                yield f"index {key[len(prefix) :]}/{member.decode()}", score


@dataclass(frozen=True)
class Rebuilt:
    """What a rebuild folded: how many events, in how long, up to where, and the largest aggregate."""

    events: int
    seconds: float
    last: str
    largest: tuple[str, int] | None
    cold_difference: str | None = None  # the first compacted run whose cold document is not its replay


Progress = Callable[[int], None]  # told how many events have been folded so far, after each batch


def rebuild(store: EventStore, target: ReadModels, until: str = "+", progress: Progress | None = None) -> Rebuilt:
    """Fold the whole log (up to ``until``; the archived part too, if trimmed) in memory into ``target``."""
    state: dict[str, dict[str, Doc | None]] = {}
    sizes: dict[str, int] = {}
    count = 0
    last = ""
    started = time.perf_counter()
    # The fold only builds up acyclic documents: the cycle collector would rescan them all, again and
    # again, as they grow (a third of the replay's time on 200,000 events), for nothing to collect.
    # The same holds while they are written out, so it stays off until then.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for events in replay_batches(store, until=until):
            fold(state, events)
            for rec in events:
                sizes[rec.aggregate] = sizes.get(rec.aggregate, 0) + 1
            count += len(events)
            last = events[-1].position
            if progress is not None:
                progress(count)
        fold_seconds = time.perf_counter() - started
        cold_difference = _set_aside_cold(store, state)
        target.drop()
        target.write_all(state, last)
    finally:
        if gc_was_enabled:
            gc.enable()
    largest = max(sizes.items(), key=lambda item: item[1]) if sizes else None
    return Rebuilt(count, fold_seconds, last, largest, cold_difference)


def _set_aside_cold(store: EventStore, state: dict[str, dict[str, Doc | None]]) -> str | None:
    """Take the compacted runs out of a rebuilt state (they live in the cold tier, not in Redis), checking
    each against its cold document; returns the first that differs."""
    runs = state.get(COLD_MODEL, {})
    if not runs or not store.redis.scard(store.keys.compacted):
        return None
    ids = list(runs)
    compacted: list[str] = []
    for start in range(0, len(ids), WRITE_CHUNK):
        chunk = ids[start : start + WRITE_CHUNK]
        found: Any = store.redis.smismember(store.keys.compacted, chunk)
        compacted += [entity for entity, is_cold in zip(chunk, found, strict=True) if is_cold]
    cold = store.cold.documents(COLD_MODEL, compacted)
    difference = None
    for entity in compacted:
        replayed = runs.pop(entity)
        held = orjson.loads(cold[entity]) if entity in cold else None
        if difference is None and held != replayed:
            where = f"{COLD_MODEL}:{entity} (cold)"
            difference = (
                f"{where}: missing from the cold tier"
                if held is None
                else f"{where}: cold {_short(cold[entity])} != replayed {_short(dumps(replayed or {}))}"
            )
    return difference


@dataclass(frozen=True)
class VerifyResult:
    """What ``replay --verify`` found."""

    events: int
    seconds: float
    identical: bool
    difference: str | None
    largest: tuple[str, int] | None = None

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def _first_difference(live: ReadModels, scratch: ReadModels) -> str | None:
    left = dict(live.snapshot())
    right = dict(scratch.snapshot())
    for key in sorted(left.keys() | right.keys()):
        a, b = left.get(key), right.get(key)
        if a != b:
            if a is None:
                return f"{key}: missing from the live read model"
            if b is None:
                return f"{key}: in the live read model but not in the replay"
            return f"{key}: live {_short(a)} != replayed {_short(b)}"
    return None


def _short(value: Any) -> str:
    text = value.decode() if isinstance(value, bytes) else str(value)
    return text if len(text) <= 300 else text[:300] + "..."


def verify(store: EventStore, attempts: int = 5, progress: Progress | None = None) -> VerifyResult:
    """Rebuild every read model into a scratch namespace and compare it with the live one."""
    live = ReadModels(store)
    scratch = ReadModels(store, f"scratch-{time.time_ns()}")
    try:
        checkpoint = live.catch_up()
        rebuilt = rebuild(store, scratch, checkpoint, progress) if checkpoint else Rebuilt(0, 0.0, "", None)
        difference = None
        for _ in range(attempts):
            difference = _first_difference(live, scratch)
            moved = live.checkpoint()
            if moved == checkpoint:
                break
            # The system kept running: fold the same new events into the scratch copy and compare again.
            scratch.catch_up(until=moved)
            checkpoint = moved
        difference = rebuilt.cold_difference or difference
        return VerifyResult(rebuilt.events, rebuilt.seconds, difference is None, difference, rebuilt.largest)
    finally:
        scratch.drop()


def rebuild_live(store: EventStore, progress: Progress | None = None, guarded: bool = False) -> Rebuilt:
    """Drop the live read models and rebuild them from the log while the system keeps running.

    The rebuild goes into a fresh namespace, is caught up with whatever was appended meanwhile,
    then replaces the live namespace in one script; anything appended after that is past the new
    checkpoint, so the next reader folds it: no event is lost. ``guarded`` (a reader's rebuild after an
    upgrade, not one holding the store): the swap is refused, with ``StoreUnderMaintenance``, if an import,
    restore or rebuild began meanwhile, since that operation writes the live read models itself.
    """
    fresh = ReadModels(store, f"rebuild-{time.time_ns()}")
    try:
        rebuilt = rebuild(store, fresh, progress=progress)
        fresh.catch_up()
        swap = store.redis.register_script(_script("swap.lua"))
        keys = [store.keys.maintenance]
        args = [store.keys.namespace_prefix(fresh.namespace), store.keys.namespace_prefix(LIVE), str(int(guarded))]
        if swap(keys=keys, args=args) == -1:
            raise StoreUnderMaintenance("the read models were not replaced: the store went into maintenance")
    finally:
        fresh.drop()
    return rebuilt
