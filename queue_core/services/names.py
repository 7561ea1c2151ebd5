"""Who holds a unique live name, loaded from the name"s own events."""

from __future__ import annotations

from queue_core.domain.names import apply_name, name_aggregate
from queue_core.eventlog.aggregates import load_state
from queue_core.eventlog.store import EventStore

__all__ = ["owner_of"]


def owner_of(store: EventStore, kind: str, name: str, until: str = "+") -> tuple[str | None, int]:
    """Who holds ``name`` among live things of ``kind`` (as of ``until``), and the name aggregate's version."""
    doc, version = load_state(store, name_aggregate(kind, name), apply_name, until)
    return (doc["owner"] if doc else None), version
