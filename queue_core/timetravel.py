"""State as it was at a point of the log: one aggregate folded up to it, or every read model."""

from __future__ import annotations

import gc
from typing import Any

from .events import decode
from .projections import fold
from .runs import public_view
from .store import EventStore

__all__ = ["fold_until", "runs_as_of"]

Doc = dict[str, Any]


def fold_until(store: EventStore, until: str) -> dict[str, dict[str, Doc | None]]:
    """Every read model's documents as of position ``until`` (inclusive), folded from the log in memory."""
    state: dict[str, dict[str, Doc | None]] = {}
    gc_was_enabled = gc.isenabled()
    gc.disable()  # the fold builds acyclic documents only; see readmodels.rebuild
    try:
        for entries in store.read_raw(until=until):
            fold(state, [decode(pos.decode(), fields[b"e"]) for pos, fields in entries])
    finally:
        if gc_was_enabled:
            gc.enable()
    return state


def runs_as_of(
    state: dict[str, dict[str, Doc | None]], status: str | None, definition: str | None, limit: int | None
) -> list[Doc]:
    """Runs of a folded state as ``list_runs`` shows them: newest first, filtered."""
    docs = [d for d in state.get("runs", {}).values() if d is not None]
    docs = [
        d
        for d in docs
        if (status is None or d["status"] == status) and (definition is None or d["definition"] == definition)
    ]
    docs.sort(key=lambda d: d["order"], reverse=True)
    return [public_view(d) for d in (docs if limit is None else docs[:limit])]
