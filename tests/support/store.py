"""The event store in tests: batches to append, and what an append that wrote nothing leaves unchanged."""

from __future__ import annotations

from queue_core.eventlog.events import ClusterRegistered, NewEvent
from queue_core.eventlog.store import EventStore


def registered(aggregate: str, n: int = 1) -> list[NewEvent]:
    """``n`` small events on ``aggregate`` (clusters ``c0``, ``c1``...): a batch to append."""
    return [
        NewEvent(aggregate, ClusterRegistered(name=f"c{i}", workers=i + 1, instance_type="local")) for i in range(n)
    ]


def log_state(store: EventStore) -> tuple[int, str]:
    """What an append that wrote nothing must leave unchanged: log length and newest position."""
    return store.length(), store.last_position()
