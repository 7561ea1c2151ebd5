"""State as it was at a point of the log, shaped as the live read commands show it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from queue_core.domain.runs import public_view
from queue_core.eventlog.archive import history_events
from queue_core.eventlog.positions import as_position
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.projections import fold

__all__ = ["runs_as_of", "state_as_of"]

Doc = dict[str, Any]


def runs_as_of(
    state: Mapping[str, Mapping[str, Doc | None]], status: str | None, definition: str | None, limit: int | None
) -> list[Doc]:
    """Runs of a folded state (``state_as_of``) as ``list_runs`` shows them: newest first, filtered."""
    docs = [d for d in state.get("runs", {}).values() if d is not None]
    docs = [
        d
        for d in docs
        if (status is None or d["status"] == status) and (definition is None or d["definition"] == definition)
    ]
    docs.sort(key=lambda d: d["order"], reverse=True)
    return [public_view(d) for d in (docs if limit is None else docs[:limit])]


def state_as_of(store: EventStore, until: str) -> dict[str, dict[str, Doc]]:
    """The read models as of position (or ISO time) ``until``: model -> entity -> document.

    Folds every event up to and including ``until``, reading the archived part back when the log was
    trimmed. Documents that no longer existed then (a released name) are left out.
    """
    state = fold({}, history_events(store, until=as_position(until, "until")))
    return {model: {k: doc for k, doc in docs.items() if doc is not None} for model, docs in state.items()}
