"""Loading aggregates' current state by folding their own events, with their versions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from queue_core.eventlog.events import Recorded
from queue_core.eventlog.store import EventStore

__all__ = ["load_state", "load_states"]

Doc = dict[str, Any]


def load_state(
    store: EventStore, aggregate: str, apply: Callable[[Doc | None, Recorded], Doc | None], until: str = "+"
) -> tuple[Doc | None, int]:
    """The aggregate's document (None if it has none) and the version it is at (as of ``until``)."""
    doc: Doc | None = None
    events = store.load(aggregate, until)
    for rec in events:
        doc = apply(doc, rec)
    return doc, len(events)


def load_states(
    store: EventStore,
    aggregates: Iterable[str],
    apply: Callable[[Doc | None, Recorded], Doc | None],
    until: str = "+",
) -> dict[str, tuple[Doc, int]]:
    """Several aggregates' documents and versions (as of ``until``) in one round trip; empty ones left out."""
    loaded: dict[str, tuple[Doc, int]] = {}
    for aggregate, events in store.load_many(sorted(set(aggregates)), until).items():
        doc: Doc | None = None
        for rec in events:
            doc = apply(doc, rec)
        if doc is not None:
            loaded[aggregate] = (doc, len(events))
    return loaded
