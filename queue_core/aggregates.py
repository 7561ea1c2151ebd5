"""Loading one aggregate's current state by folding its own events, with its version."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .events import Recorded
from .store import EventStore

__all__ = ["load_state"]

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
