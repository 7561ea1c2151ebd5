"""Loading aggregates' current state by folding their own events, with their versions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from queue_core.errors import Quarantined
from queue_core.eventlog.events import Recorded
from queue_core.eventlog.store import EventStore

__all__ = ["folded", "load_state", "load_states"]

Doc = dict[str, Any]


def load_state(
    store: EventStore, aggregate: str, apply: Callable[[Doc | None, Recorded], Doc | None], until: str = "+"
) -> tuple[Doc | None, int]:
    """The aggregate's document (None if it has none) and the version it is at (as of ``until``)."""
    events = store.load(aggregate, until)
    return folded(aggregate, events, apply), len(events)


def folded(
    aggregate: str, events: list[Recorded], apply: Callable[[Doc | None, Recorded], Doc | None], doc: Doc | None = None
) -> Doc | None:
    """The aggregate's document after ``events`` (folded onto ``doc``, its state before them); ``Quarantined``
    when folding one of them raises."""
    for rec in events:
        try:
            doc = apply(doc, rec)
        except Exception as exc:  # whatever the fold raised, this aggregate alone is at fault
            raise Quarantined(aggregate, rec.position, rec.type, f"{type(exc).__name__}: {exc}") from None
    return doc


def load_states(
    store: EventStore,
    aggregates: Iterable[str],
    apply: Callable[[Doc | None, Recorded], Doc | None],
    until: str = "+",
) -> dict[str, tuple[Doc, int]]:
    """Several aggregates' documents and versions (as of ``until``) in one round trip; empty ones left out,
    and quarantined ones too (their history cannot be folded: nothing may decide on them)."""
    loaded: dict[str, tuple[Doc, int]] = {}
    for aggregate, events in store.load_many(sorted(set(aggregates)), until).items():
        try:
            doc = folded(aggregate, events, apply)
        except Quarantined:
            continue
        if doc is not None:
            loaded[aggregate] = (doc, len(events))
    return loaded
