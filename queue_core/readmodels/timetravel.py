"""State as it was at a point of the log, shaped as the live read commands show it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from queue_core.domain.runs import public_view

__all__ = ["runs_as_of"]

Doc = dict[str, Any]


def runs_as_of(
    state: Mapping[str, Mapping[str, Doc | None]], status: str | None, definition: str | None, limit: int | None
) -> list[Doc]:
    """Runs of a folded state (``Client.fold_until``) as ``list_runs`` shows them: newest first, filtered."""
    docs = [d for d in state.get("runs", {}).values() if d is not None]
    docs = [
        d
        for d in docs
        if (status is None or d["status"] == status) and (definition is None or d["definition"] == definition)
    ]
    docs.sort(key=lambda d: d["order"], reverse=True)
    return [public_view(d) for d in (docs if limit is None else docs[:limit])]
