"""A consumer group on the log: readers that share its entries, acknowledge them, and take over a dead one's.

The dispatcher reads through it; the metrics report its lag. A delivery hands over the entries' events,
decoded, and every position delivered for the acknowledgement (a deleted entry has no event but is
acknowledged).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import redis

from queue_core.eventlog.events import Recorded, decode
from queue_core.eventlog.positions import before, position_key
from queue_core.eventlog.store import EventStore

__all__ = ["LAG_COUNT_LIMIT", "ConsumerGroup", "Delivery", "GroupStatus"]

# Counting undelivered entries one by one is only needed on Redis 6.2 (7 reports the lag itself).
LAG_COUNT_LIMIT = 100_000


class Delivery:
    """What one read or claim handed a consumer: its events, decoded one at a time as they are iterated
    (a batch of decoded events held at once would cost the dispatcher's loop garbage-collector passes),
    and its positions, every entry's, for the acknowledgement."""

    __slots__ = ("_entries",)

    def __init__(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        self._entries = entries

    def __iter__(self) -> Iterator[Recorded]:
        """The entries' events, oldest first. A deleted entry (XAUTOCLAIM returns it empty) has none."""
        for position, fields in self._entries:
            if fields:
                yield decode(position.decode(), fields[b"e"])

    def __len__(self) -> int:
        """How many entries were delivered, deleted ones included."""
        return len(self._entries)

    @property
    def positions(self) -> list[bytes]:
        """Every entry delivered, deleted ones included, as Redis named them: what ``ack`` takes."""
        return [position for position, _ in self._entries]


class GroupStatus(NamedTuple):
    """How far a group has got: its consumers, what they hold unacknowledged, and what none has read yet."""

    consumers: int
    pending: int  # entries read but not acknowledged
    delivered: str  # the last position handed to a consumer ("0-0" before the first)
    behind: int  # log entries after ``delivered``
    oldest_behind_ms: int | None  # the time (ms, the position's clock) of the first of them; None when none


class ConsumerGroup:
    """One named consumer group on the store's log."""

    def __init__(self, store: EventStore, name: str) -> None:
        self.store = store
        self.redis = store.redis
        self.name = name
        self.log = store.keys.log

    def ensure(self) -> None:
        """Create the group (and the log stream, if there is none) reading from the start of the log."""
        try:
            # From the start: what was appended before any consumer existed is still delivered.
            self.redis.xgroup_create(self.log, self.name, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def handled_through(self) -> str | None:
        """The position up to which every entry was delivered and acknowledged (None without the group).

        What the group is recreated from if it goes missing: nothing after it is skipped.
        """
        try:
            groups: Any = self.redis.xinfo_groups(self.log)
            summary: Any = self.redis.xpending(self.log, self.name)
        except redis.ResponseError:  # no log, or no group
            return None
        group = next((g for g in groups if _text(g["name"]) == self.name), None)
        if group is None:
            return None
        delivered = _text(group["last-delivered-id"])
        if not summary["pending"]:
            return delivered
        return min(delivered, before(_text(summary["min"])), key=position_key)

    def recreate(self, after: str) -> None:
        """Create the group again (it went missing) delivering the log's entries after ``after``.

        Never past the log's newest entry: a log restored to an earlier point gets its new entries delivered.
        """
        newest: Any = self.redis.xrevrange(self.log, count=1)
        start = min(after, _text(newest[0][0]), key=position_key) if newest else "0"
        try:
            self.redis.xgroup_create(self.log, self.name, id=start)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read_new(self, consumer: str, count: int, block_ms: int = 0) -> Delivery:
        """Up to ``count`` entries no consumer of the group was given yet, waiting up to ``block_ms`` (0: not)."""
        reply: Any = self.redis.xreadgroup(self.name, consumer, {self.log: ">"}, count=count, block=block_ms or None)
        for _stream, entries in reply or []:  # the one stream read
            return Delivery(entries)
        return Delivery([])

    def claim_abandoned(self, consumer: str, min_idle_ms: int, count: int) -> Delivery:
        """Take over up to ``count`` entries another consumer read but left unacknowledged for ``min_idle_ms``."""
        reply: Any = self.redis.xautoclaim(self.log, self.name, consumer, min_idle_time=min_idle_ms, count=count)
        return Delivery(reply[1] if reply else [])

    def ack(self, positions: Sequence[bytes | str]) -> int:
        """Acknowledge entries handled; returns how many were pending."""
        if not positions:
            return 0
        return int(self.redis.xack(self.log, self.name, *positions))

    def forget_idle(self, keep: str, min_idle_ms: int) -> list[str]:
        """Remove consumers other than ``keep`` that hold nothing and have not read for ``min_idle_ms``.

        A dead dispatcher's consumer stays in the group for good otherwise, and is counted as a dispatcher.
        One that holds entries stays until they are claimed; a live one removed after a long freeze is
        recreated by its next read.
        """
        if not self.redis.exists(self.log):
            return []
        try:
            consumers: Any = self.redis.xinfo_consumers(self.log, self.name)
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):
                return []
            raise
        gone = [
            _text(c["name"])
            for c in consumers
            if _text(c["name"]) != keep and int(c["pending"]) == 0 and int(c["idle"]) >= min_idle_ms
        ]
        for name in gone:
            self.redis.xgroup_delconsumer(self.log, self.name, name)
        return gone

    def status(self, count_limit: int = LAG_COUNT_LIMIT) -> GroupStatus:
        """The group's consumers, pending entries and lag (counted up to ``count_limit`` where Redis does not).

        A group that does not exist yet has read nothing: every entry of the log is behind.
        """
        groups: Any = self.redis.xinfo_groups(self.log) if self.redis.exists(self.log) else []
        group = next((g for g in groups if _text(g["name"]) == self.name), None)
        delivered = _text(group["last-delivered-id"]) if group else "0-0"
        first: Any = self.redis.xrange(self.log, min=f"({delivered}", max="+", count=1)
        behind, oldest = 0, None
        if first:
            oldest = int(_text(first[0][0]).partition("-")[0])
            lag = group.get("lag") if group else None
            if lag is None:  # Redis 6.2, or a group that has not read yet: count (up to a limit)
                entries: Any = self.redis.xrange(self.log, min=f"({delivered}", max="+", count=count_limit)
                lag = len(entries)
            behind = int(lag)
        return GroupStatus(
            consumers=int(group["consumers"]) if group else 0,
            pending=int(group["pending"]) if group else 0,
            delivered=delivered,
            behind=behind,
            oldest_behind_ms=oldest,
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
