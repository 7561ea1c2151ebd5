"""The event store: one Redis Stream for the whole log, one stream per aggregate, one Lua append."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from importlib import resources
from typing import Any

import orjson
import redis

from queue_core.errors import (
    AppendFailed,
    ConcurrencyError,
    InvalidInput,
    StoreEpochChanged,
    StoreFull,
    StoreUnavailable,
    StoreUnderMaintenance,
    UnsafeStore,
)
from queue_core.eventlog.connection import unavailable
from queue_core.eventlog.events import NewEvent, Recorded, decode, encode, envelope_type
from queue_core.keys import Keys
from queue_core.timefmt import utc_now

__all__ = ["EventStore"]

READ_BATCH = 1000
DEFAULT_PATIENCE_SECONDS = 5.0
MAX_RETRY_DELAY_SECONDS = 1.0
SAFE_EVICTION_POLICIES = frozenset({"noeviction"})


def _script_text(name: str) -> str:
    return resources.files("queue_core.eventlog").joinpath("lua", name).read_text()


class EventStore:
    """Appends events with optimistic concurrency and reads them back, oldest first."""

    def __init__(
        self, connection: redis.Redis, keys: Keys | None = None, patience_seconds: float = DEFAULT_PATIENCE_SECONDS
    ) -> None:
        self.redis = connection
        self.keys = keys or Keys()
        self._append = connection.register_script(_script_text("append.lua"))
        # How long an append whose reply is lost is retried (same event ids) before it is given up.
        self.patience_seconds = patience_seconds
        # The store's epoch as this process knows it ("" until learned): appends refuse a store without it.
        self.epoch = ""
        self.on_epoch: Callable[[str], None] | None = None  # told when the epoch is first learned

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
                return self._append(keys=keys, args=args)
            except redis.ResponseError as exc:
                refusal = _refusal(exc, self.epoch)
                # Held for maintenance (nothing was written): waited out like an outage, then refused.
                if not isinstance(refusal, StoreUnderMaintenance) or time.monotonic() + delay > deadline:
                    raise refusal from exc
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                # The reply may be lost after the write: retrying with the same event ids is safe.
                if time.monotonic() + delay > deadline:
                    raise (exc if isinstance(exc, StoreUnavailable) else unavailable(exc)) from exc
            time.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY_SECONDS)

    # -- reading ------------------------------------------------------------------------------

    def version(self, aggregate: str, until: str = "+") -> int:
        """The aggregate's current version (0 when it has no events), or its version at log position ``until``.

        Counted from the aggregate's stream, without reading its events.
        """
        if until == "+":
            return int(self.redis.xlen(self.keys.aggregate(aggregate)))
        entries: Any = self.redis.xrange(self.keys.aggregate(aggregate), max=until)
        return len(entries)

    def _at(self, position: str) -> Recorded:
        entries: Any = self.redis.xrange(self.keys.log, min=position, max=position)
        return decode(position, entries[0][1][b"e"])

    def load(self, aggregate: str, until: str = "+") -> list[Recorded]:
        """Every event of one aggregate (up to position ``until``, inclusive), oldest first."""
        entries: Any = self.redis.xrange(self.keys.aggregate(aggregate), max=until)
        if not entries:
            self._confirm_missing()
        return [decode(_s(pos), fields[b"e"]) for pos, fields in entries]

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

    def load_after(self, aggregate: str, after: str) -> list[Recorded]:
        """The aggregate's events after position ``after`` (exclusive): what a cached fold has not seen."""
        entries: Any = self.redis.xrange(self.keys.aggregate(aggregate), min=f"({after}")
        return [decode(_s(pos), fields[b"e"]) for pos, fields in entries]

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
        key = self.keys.aggregate(aggregate) if aggregate else self.keys.log
        reply: Any = self.redis.xread({key: after}, block=max(1, block_ms), count=count)
        return [decode(_s(pos), fields[b"e"]) for _key, entries in reply or [] for pos, fields in entries]

    def newest(self, count: int, aggregate: str | None = None, until: str = "+", since: str = "-") -> list[Recorded]:
        """Up to ``count`` events from ``until`` back to ``since`` (inclusive), newest first.

        Of the log, or of one aggregate's stream.
        """
        key = self.keys.aggregate(aggregate) if aggregate else self.keys.log
        entries: Any = self.redis.xrevrange(key, max=until, min=since, count=count)
        return [decode(_s(pos), fields[b"e"]) for pos, fields in entries]

    def load_many(self, aggregates: Iterable[str], until: str = "+") -> dict[str, list[Recorded]]:
        """Several aggregates' events (up to ``until``, inclusive) in one round trip, oldest first each."""
        ids = list(dict.fromkeys(aggregates))
        pipe = self.redis.pipeline(transaction=False)
        for aggregate in ids:
            pipe.xrange(self.keys.aggregate(aggregate), max=until)
        return {
            aggregate: [decode(_s(pos), fields[b"e"]) for pos, fields in entries]
            for aggregate, entries in zip(ids, pipe.execute(), strict=True)
        }

    def versions(self, aggregates: Iterable[str]) -> dict[str, int]:
        """Several aggregates' current versions in one round trip."""
        ids = list(dict.fromkeys(aggregates))
        pipe = self.redis.pipeline(transaction=False)
        for aggregate in ids:
            pipe.xlen(self.keys.aggregate(aggregate))
        return {aggregate: int(n) for aggregate, n in zip(ids, pipe.execute(), strict=True)}

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
