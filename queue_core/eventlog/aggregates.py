"""Loading aggregates' current state by folding their own events, with their versions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from queue_core.eventlog.events import Recorded, decode
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
    ids = sorted(set(aggregates))
    pipe = store.redis.pipeline(transaction=False)
    for aggregate in ids:
        pipe.xrange(store.keys.aggregate(aggregate), max=until)
    loaded: dict[str, tuple[Doc, int]] = {}
    for aggregate, entries in zip(ids, pipe.execute(), strict=True):
        doc: Doc | None = None
        for position, fields in entries:
            doc = apply(doc, decode(position.decode(), fields[b"e"]))
        if doc is not None:
            loaded[aggregate] = (doc, len(entries))
    return loaded
