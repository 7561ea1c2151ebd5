"""The event store: one Redis Stream for the whole log, a list of positions per aggregate, one Lua append."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from importlib import resources
from typing import Any

import orjson
import redis

from queue_core.errors import (
    AppendFailed,
    ColdAggregate,
    ConcurrencyError,
    InvalidInput,
    StoreEpochChanged,
    StoreFull,
    StoreUnavailable,
    StoreUnderMaintenance,
    UnsafeStore,
)
from queue_core.eventlog.cold import ColdTier
from queue_core.eventlog.connection import NO_REPLICAS, no_replicas, unavailable
from queue_core.eventlog.events import NewEvent, Recorded, decode, encode, envelope_type
from queue_core.eventlog.positions import position_key
from queue_core.keys import Keys
from queue_core.timefmt import utc_now

__all__ = ["EventStore"]

READ_BATCH = 1000
DEFAULT_PATIENCE_SECONDS = 5.0
DEFAULT_REPLICA_WAIT_MS = 1000
MAX_RETRY_DELAY_SECONDS = 1.0
SAFE_EVICTION_POLICIES = frozenset({"noeviction"})


def _script_text(name: str) -> str:
    return resources.files("queue_core.eventlog").joinpath("lua", name).read_text()


class EventStore:
    """Appends events with optimistic concurrency and reads them back, oldest first."""

    def __init__(
        self,
        connection: redis.Redis,
        keys: Keys | None = None,
        patience_seconds: float = DEFAULT_PATIENCE_SECONDS,
        replicas: int = 0,
        replica_wait_ms: int = DEFAULT_REPLICA_WAIT_MS,
    ) -> None:
        self.redis = connection
        self.keys = keys or Keys()
        self._append = connection.register_script(_script_text("append.lua"))
        # How long an append whose reply is lost is retried (same event ids) before it is given up.
        self.patience_seconds = patience_seconds
        # The store's epoch as this process knows it ("" until learned): appends refuse a store without it.
        self.epoch = ""
        self.on_epoch: Callable[[str], None] | None = None  # told when the epoch is first learned
        self.cold = ColdTier(connection, self.keys)
        # Durability "replicated": an append is acknowledged once WAIT says this many replicas have it.
        self.replicas = replicas
        self.replica_wait_ms = replica_wait_ms

    def check_safe(self) -> None:
        """Refuse a Redis whose eviction policy could drop events from the log."""
        try:
            # INFO, not CONFIG GET: an ACL user of a role may read the server's state, never its configuration.
            policy = self.redis.info("memory").get("maxmemory_policy", "noeviction")
        except redis.ResponseError:  # INFO may be disabled by a managed service; nothing to check then.
            return
        except StoreUnavailable:
            raise
        except redis.ConnectionError as exc:
            raise StoreUnavailable(f"store unavailable: {exc}") from exc
        if isinstance(policy, bytes):
            policy = policy.decode()
        if policy not in SAFE_EVICTION_POLICIES:
            raise UnsafeStore(
                f"Redis maxmemory-policy is {policy!r}; jobledger needs 'noeviction' so no event can be evicted"
            )

    # -- writing ------------------------------------------------------------------------------

    def append(self, batch: Sequence[NewEvent], expected: Mapping[str, int]) -> list[Recorded]:
        """Append ``batch`` all-or-nothing if each aggregate is at its ``expected`` version.

        Raises ``ConcurrencyError`` when another writer got there first. A batch whose reply was
        lost is retried with the same event ids, so it is recorded once.
        """
        if len({new.event_id for new in batch}) != len(batch):
            raise AppendFailed("duplicate event id in batch")
        aggregates = list(dict.fromkeys(new.aggregate for new in batch))
        missing = [a for a in aggregates if a not in expected]
        if missing:
            raise AppendFailed(f"no expected version given for {missing[0]}")
        index = {agg: i + 1 for i, agg in enumerate(aggregates)}
        versions = {agg: expected[agg] for agg in aggregates}
        now = utc_now()
        args: list[str | int | bytes] = [len(aggregates), *[expected[a] for a in aggregates]]
        envelopes: list[tuple[NewEvent, int, bytes]] = []
        for new in batch:
            versions[new.aggregate] += 1
            try:
                payload = encode(new, versions[new.aggregate], now)
            except orjson.JSONEncodeError as exc:  # what validation let through must still not crash a caller
                raise InvalidInput(f"a {type(new.event).__name__} event cannot be stored: {exc}") from None
            envelopes.append((new, versions[new.aggregate], payload))
            args += [index[new.aggregate], new.event_id, payload]
        keys = [self.keys.log, self.keys.epoch, *[self.keys.aggregate(a) for a in aggregates], self.keys.maintenance]
        reply = self._call_with_retry(keys, [self.epoch, *args])
        if not self.epoch:
            self.learn_epoch()
        status = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
        if status == "CONFLICT":
            agg = aggregates[int(reply[1]) - 1]
            if int(reply[2]) == 0 and self.redis.sismember(self.keys.compacted, agg):
                raise ColdAggregate(f"{agg} ended and was moved to the cold tier: it takes no more events")
            raise ConcurrencyError(agg, expected[agg], int(reply[2]))
        positions = [p.decode() if isinstance(p, bytes) else p for p in reply[1:]]
        if status == "DUP":  # recorded by an earlier call whose reply was lost: read it as the log has it
            return [self._at(pos) for pos in positions]
        return [
            Recorded(pos, new.event_id, type(new.event).__name__, new.aggregate, version, now, new.event)
            for pos, (new, version, _) in zip(positions, envelopes, strict=True)
        ]

    def learn_epoch(self) -> str:
        """Remember the store's epoch (the chain hash of its log's first entry), once it has one."""
        value: Any = self.redis.get(self.keys.epoch)
        learned = value.decode() if value else ""
        if learned and learned != self.epoch and self.on_epoch is not None:
            self.on_epoch(learned)
        self.epoch = learned
        return self.epoch

    def _call_with_retry(self, keys: list[str], args: list[str | int | bytes]) -> list:
        delay = 0.05
        deadline = time.monotonic() + self.patience_seconds
        while True:
            try:
                if self.replicas:
                    return self._append_replicated(keys, args)
                return self._append(keys=keys, args=args)
            except redis.ResponseError as exc:
                refusal = _refusal(exc, self.epoch)
                # Held for maintenance, or a primary with too few replicas to take writes (nothing was written):
                # waited out like an outage, then refused.
                waits = isinstance(refusal, (StoreUnderMaintenance, StoreUnavailable))
                if not waits or time.monotonic() + delay > deadline:
                    raise refusal from exc
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                # The reply may be lost after the write: retrying with the same event ids is safe.
                if time.monotonic() + delay > deadline:
                    raise (exc if isinstance(exc, StoreUnavailable) else unavailable(exc)) from exc
            time.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY_SECONDS)

    def _append_replicated(self, keys: list[str], args: list[str | int | bytes]) -> list:
        """The append script, then ``WAIT`` on the same connection (WAIT counts the replicas that have this
        connection's writes): too few in time is a lost reply, ``StoreUnavailable``, retried with the same ids.

        A retried batch found written (``DUP``) rewrites the epoch with itself, so the WAIT covers it too.
        """
        for _ in range(2):  # a server that has not seen the script yet: load it, once
            pipe = self.redis.pipeline(transaction=False)
            pipe.evalsha(self._append.sha, len(keys), *keys, *args)
            pipe.execute_command("WAIT", self.replicas, self.replica_wait_ms)
            reply, acknowledged = pipe.execute(raise_on_error=False)
            if isinstance(reply, redis.exceptions.NoScriptError):
                self.redis.script_load(self._append.script)
                continue
            if isinstance(reply, Exception):
                raise reply
            status = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
            if status != "CONFLICT" and int(acknowledged) < self.replicas:
                raise StoreUnavailable(
                    f"store unavailable: {acknowledged} of {self.replicas} replicas acknowledged the append "
                    f"within {self.replica_wait_ms} ms"
                )
            return list(reply)
        raise AppendFailed("the store does not keep the append script")

    # -- reading ------------------------------------------------------------------------------

    def version(self, aggregate: str, until: str = "+") -> int:
        """The aggregate's current version (0 when it has no events), or its version at log position ``until``.

        Counted from the aggregate's position list (a compacted one's from the cold tier).
        """
        if until == "+":
            return self.versions([aggregate])[aggregate]
        return len(self._listing([aggregate], until)[0][aggregate])

    def _listing(self, aggregates: list[str], until: str = "+") -> tuple[dict[str, list[str]], dict[str, bytes]]:
        """Each aggregate's positions up to ``until``, in one round trip; a compacted aggregate's from the
        cold tier, whose envelopes come back too (by position)."""
        if not aggregates:
            return {}, {}
        pipe = self.redis.pipeline(transaction=False)
        for aggregate in aggregates:
            pipe.lrange(self.keys.aggregate(aggregate), 0, -1)
        pipe.smismember(self.keys.compacted, aggregates)
        *lists, compacted = pipe.execute()
        listed = {a: _up_to([_s(p) for p in raw], until) for a, raw in zip(aggregates, lists, strict=True)}
        cold = [a for a, is_cold in zip(aggregates, compacted, strict=True) if is_cold and not listed[a]]
        envelopes: dict[str, bytes] = {}
        if cold:
            for aggregate, events in self.cold.events(cold).items():
                envelopes.update(events)
                listed[aggregate] = _up_to([position for position, _ in events], until)
        return listed, envelopes

    def _at(self, position: str) -> Recorded:
        return self._events([position])[0]

    def _events(self, positions: list[str], known: dict[str, bytes] | None = None) -> list[Recorded]:
        """The events at these log positions, in the order given (``known``: envelopes already read)."""
        found = self._envelopes(positions, known or {})
        return [decode(p, found[p]) for p in positions]

    def envelopes_many(self, aggregates: Iterable[str], until: str = "+") -> dict[str, list[tuple[str, bytes]]]:
        """Several aggregates' events as stored (up to ``until``), ``(position, envelope)`` oldest first, in two
        round trips."""
        listed, known = self._listing(list(dict.fromkeys(aggregates)), until)
        found = self._envelopes([p for positions in listed.values() for p in positions], known)
        return {aggregate: [(p, found[p]) for p in positions] for aggregate, positions in listed.items()}

    def _envelopes(self, positions: list[str], known: dict[str, bytes]) -> dict[str, bytes]:
        """The envelopes at these log positions: from the log, or, for entries a trim dropped while their
        aggregate was still held here, from the kept copies."""
        found = {p: known[p] for p in positions if p in known}
        positions = [p for p in positions if p not in found]
        if not positions:
            return found
        pipe = self.redis.pipeline(transaction=False)
        for position in positions:
            pipe.xrange(self.keys.log, min=position, max=position)
        replies = zip(positions, pipe.execute(), strict=True)
        found.update({position: entries[0][1][b"e"] for position, entries in replies if entries})
        missing = [p for p in positions if p not in found]
        if missing:
            kept: Any = self.redis.hmget(self.keys.kept, missing)
            found.update({p: envelope for p, envelope in zip(missing, kept, strict=True) if envelope is not None})
            lost = [p for p in missing if p not in found]
            if lost:
                # The positions were listed in one round trip and read in another: a store that came back empty
                # (or another one) in between is that, not damage.
                self._confirm_missing()
                raise AppendFailed(f"the store is damaged: no event at position {lost[0]}, listed by an aggregate")
        return found

    def load(self, aggregate: str, until: str = "+") -> list[Recorded]:
        """Every event of one aggregate (up to position ``until``, inclusive), oldest first."""
        listed, known = self._listing([aggregate], until)
        if not listed[aggregate]:
            self._confirm_missing()
        return self._events(listed[aggregate], known)

    def _confirm_missing(self) -> None:
        """An aggregate found empty: make sure it is not the whole store that is gone, or another one.

        Only a miss pays for this look at the epoch, so a command never answers "not found" from a store
        that came back empty.
        """
        if not self.epoch:
            return
        value: Any = self.redis.get(self.keys.epoch)
        found = value.decode() if value else ""
        if found != self.epoch:
            marker: Any = self.redis.get(self.keys.maintenance)  # an import or restore is filling it again
            raise _refusal(
                redis.ResponseError(f"MAINTENANCE {marker.decode()}" if marker else f"STORE_EPOCH {found}"), self.epoch
            )

    def load_since(self, aggregate: str, version: int) -> list[Recorded]:
        """The aggregate's events after its ``version``-th: what a fold at ``version`` has not seen, read without
        listing the ones it has (an aggregate's list of positions is its history, in order). A compacted
        aggregate's whole history when ``version`` is 0, else nothing: it has ended."""
        if version == 0:
            return self.load(aggregate)
        raw = self.redis.lrange(self.keys.aggregate(aggregate), version, -1)
        return self._events([_s(p) for p in raw])

    def load_after(self, aggregate: str, after: str) -> list[Recorded]:
        """The aggregate's events after position ``after`` (exclusive): what a cached fold has not seen."""
        listed, known = self._listing([aggregate])
        return self._events(_after(listed[aggregate], after), known)

    def read_raw(
        self, after: str = "0", until: str = "+", batch: int = READ_BATCH
    ) -> Iterator[list[tuple[bytes, dict[bytes, bytes]]]]:
        """Raw log entries after position ``after`` (exclusive) up to ``until``, a batch at a time."""
        start = f"({after}" if after not in ("0", "-") else "-"
        while True:
            entries: Any = self.redis.xrange(self.keys.log, min=start, max=until, count=batch)
            if not entries:
                return
            yield entries
            if len(entries) < batch:
                return
            start = f"({_s(entries[-1][0])}"

    def read_envelopes(
        self, after: str = "0", until: str = "+", batch: int = READ_BATCH
    ) -> Iterator[list[tuple[bytes, bytes]]]:
        """(position, envelope) pairs of the log after ``after`` up to ``until``, a batch at a time.

        For reading the whole log: the next batch is requested before this one is handed over, so
        Redis prepares it while the caller decodes, and replies skip redis-py's per-entry dicts.
        """
        start = f"({after}".encode() if after not in ("0", "-") else b"-"
        pool = self.redis.connection_pool
        connection = pool.get_connection()
        pending = False
        try:
            connection.send_command("XRANGE", self.keys.log, start, until, "COUNT", batch)
            pending = True
            while True:
                entries = connection.read_response()
                pending = False
                more = len(entries) == batch
                if more:
                    connection.send_command("XRANGE", self.keys.log, b"(" + entries[-1][0], until, "COUNT", batch)
                    pending = True
                if entries:
                    yield [(pos, _envelope(fields)) for pos, fields in entries]
                if not more:
                    return
        finally:
            if pending:  # abandoned with a reply in flight: this connection must not be reused
                connection.disconnect()
            pool.release(connection)

    def read_chain(self, after: str = "0", until: str = "+") -> Iterator[tuple[str, bytes, str | None]]:
        """``(position, envelope, chain hash)`` of each log entry, oldest first."""
        for entries in self.read_raw(after, until):
            for pos, fields in entries:
                chain = fields.get(b"h")
                yield _s(pos), fields[b"e"], chain.decode() if chain is not None else None

    def read(self, after: str = "0", until: str = "+", types: Collection[str] | None = None) -> Iterator[Recorded]:
        """Decoded log events after ``after`` (exclusive) up to ``until``, oldest first; only ``types`` if given.

        With ``types``, only the events of those types are decoded (an upcast never changes an event's type).
        """
        for entries in self.read_raw(after, until):
            if types is None:
                for pos, fields in entries:
                    yield decode(_s(pos), fields[b"e"])
                continue
            for pos, fields in entries:
                envelope = fields[b"e"]
                if envelope_type(envelope) in types:
                    yield decode(_s(pos), envelope)

    def follow(self, after: str, block_ms: int, count: int = 500, aggregate: str | None = None) -> list[Recorded]:
        """Events after position ``after`` (of the log, or of one aggregate), waiting up to ``block_ms`` for one.

        An empty list when none landed in that time; call again from the last position returned.
        """
        if aggregate is None:
            reply: Any = self.redis.xread({self.keys.log: after}, block=max(1, block_ms), count=count)
            return [decode(_s(pos), fields[b"e"]) for _key, entries in reply or [] for pos, fields in entries]
        # The log's head, then the aggregate's newest position: an event landing in between is the newest, and
        # one landing after them is past the head the wait starts from, so no wake-up is missed. Only the newest
        # position is read on each wake-up (any event of the log wakes it), the aggregate's list only when it moved.
        pipe = self.redis.pipeline(transaction=False)
        pipe.xrevrange(self.keys.log, count=1)
        pipe.lindex(self.keys.aggregate(aggregate), -1)
        head, newest = pipe.execute()
        if newest is None or not _after([_s(newest)], after):
            if newest is None and self.redis.sismember(self.keys.compacted, aggregate):
                again, known = self._listing([aggregate])  # a compacted one: what the cold tier holds
                return self._events(_after(again[aggregate], after)[:count], known)
            if head:  # wait for the log to move past its head, then look at the aggregate again
                self.redis.xread({self.keys.log: _s(head[0][0])}, block=max(1, block_ms), count=1)
            newest = self.redis.lindex(self.keys.aggregate(aggregate), -1)
            if newest is None or not _after([_s(newest)], after):
                return []
        again, known = self._listing([aggregate])
        return self._events(_after(again[aggregate], after)[:count], known)

    def newest(self, count: int, aggregate: str | None = None, until: str = "+", since: str = "-") -> list[Recorded]:
        """Up to ``count`` events from ``until`` back to ``since`` (inclusive), newest first.

        Of the log, or of one aggregate.
        """
        if aggregate is None:
            entries: Any = self.redis.xrevrange(self.keys.log, max=until, min=since, count=count)
            return [decode(_s(pos), fields[b"e"]) for pos, fields in entries]
        listed, known = self._listing([aggregate], until)
        positions = listed[aggregate]
        if since != "-":
            positions = [p for p in positions if position_key(p) >= position_key(since)]
        return self._events(positions[::-1][:count], known)

    def load_many(self, aggregates: Iterable[str], until: str = "+") -> dict[str, list[Recorded]]:
        """Several aggregates' events (up to ``until``, inclusive), oldest first each, in two round trips."""
        stored = self.envelopes_many(aggregates, until)
        return {aggregate: [decode(p, envelope) for p, envelope in pairs] for aggregate, pairs in stored.items()}

    def versions(self, aggregates: Iterable[str]) -> dict[str, int]:
        """Several aggregates' current versions in one round trip (a compacted one's from the cold tier)."""
        ids = list(dict.fromkeys(aggregates))
        if not ids:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for aggregate in ids:
            pipe.llen(self.keys.aggregate(aggregate))
        pipe.smismember(self.keys.compacted, ids)
        *lengths, compacted = pipe.execute()
        versions = {aggregate: int(n) for aggregate, n in zip(ids, lengths, strict=True)}
        cold = [a for a, is_cold in zip(ids, compacted, strict=True) if is_cold and not versions[a]]
        if cold:
            versions.update({a: len(events) for a, events in self.cold.events(cold).items()})
        return versions

    def holds(self, position: str) -> bool:
        """Whether the log still has its entry at ``position`` (one archived and trimmed away counts as held).

        A follower whose last position is gone follows a log restored to an earlier point: what it folded is void.
        """
        return self.holds_many([position])[0]

    def holds_many(self, positions: list[str]) -> list[bool]:
        """``holds`` for each position, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for position in positions:
            pipe.xrange(self.keys.log, min=position, max=position)
        pipe.xrange(self.keys.log, count=1)
        *found, oldest = pipe.execute()
        first = position_key(_s(oldest[0][0])) if oldest else None
        return [
            bool(hit) or (first is not None and position_key(p) < first)
            for p, hit in zip(positions, found, strict=True)
        ]

    def tail(self, count: int) -> list[Recorded]:
        """The newest ``count`` events, oldest first."""
        return self.newest(count)[::-1]

    def last_position(self) -> str:
        """The position of the newest event, or ``"0"`` on an empty log."""
        entries: Any = self.redis.xrevrange(self.keys.log, count=1)
        return _s(entries[0][0]) if entries else "0"

    def length(self) -> int:
        return int(self.redis.xlen(self.keys.log))


def _refusal(exc: redis.ResponseError, known_epoch: str) -> Exception:
    """The typed error for a reply the append script or Redis refused the batch with; nothing was written."""
    message = str(exc)
    if "APPEND_FAILED" in message:
        return AppendFailed(message.split("APPEND_FAILED", 1)[1].strip())
    if message.startswith("MAINTENANCE"):
        return StoreUnderMaintenance(_under_maintenance(message.removeprefix("MAINTENANCE").strip()))
    if message.startswith("STORE_EPOCH"):
        found, _, missing_log = message.removeprefix("STORE_EPOCH").strip().partition(" ")
        if missing_log:
            return StoreEpochChanged(f"the store has lost its log but keeps epoch {found[:12]}; nothing was appended")
        if not found:
            return StoreEpochChanged(
                f"the event store came back empty (it had epoch {known_epoch[:12]}): refusing to start a new log"
            )
        return StoreEpochChanged(
            f"the store now holds another log (epoch {found[:12]}, this process knew {known_epoch[:12]})"
        )
    if no_replicas(exc):  # min-replicas-to-write: the primary has no replica in sync
        return StoreUnavailable(NO_REPLICAS)
    if isinstance(exc, redis.exceptions.OutOfMemoryError) or "OOM command not allowed" in message:
        return StoreFull("the store is full (Redis reached its maxmemory); nothing was appended")
    return AppendFailed(f"append refused by Redis: {message}")


def _under_maintenance(marker: str) -> str:
    """The one line for an append the maintenance marker refused (the marker as maintenance_mode writes it)."""
    try:
        fields = orjson.loads(marker)
        doing = f"{fields['operation']} in progress (since {fields['since']}, by {fields['holder']})"
    except (orjson.JSONDecodeError, KeyError, TypeError):
        doing = "held"
    return f"store under maintenance: {doing}; nothing was written: try again when it ends"


def _envelope(fields: list[bytes]) -> bytes:
    """The envelope of a raw stream entry's flat field list (jobledger writes only ``e``)."""
    return fields[1] if fields[0] == b"e" else dict(zip(fields[::2], fields[1::2], strict=True))[b"e"]


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _up_to(positions: list[str], until: str) -> list[str]:
    """The positions at or before ``until`` (``+``: all of them); a position list is in log order."""
    if until == "+":
        return positions
    limit = position_key(until) if "-" in until else (int(until), 2**64)  # an id's ms alone: all of that ms
    return [p for p in positions if position_key(p) <= limit]


def _after(positions: list[str], after: str) -> list[str]:
    """The positions after ``after`` (exclusive; ``0`` or ``-``: all of them)."""
    if after in ("0", "-"):
        return positions
    limit = position_key(after)
    return [p for p in positions if position_key(p) > limit]
