"""Depots: the fold of a depot's events (named storage locations that dataset addresses point into)."""

from __future__ import annotations

from typing import Any

from queue_core.eventlog.events import DepotAdded, Recorded

__all__ = ["DEPOT_KIND", "apply_depot"]

DEPOT_KIND = "depot"


def apply_depot(doc: dict[str, Any] | None, rec: Recorded) -> dict[str, Any] | None:
    """Fold one depot event into the depot's document."""
    event = rec.event
    if not isinstance(event, DepotAdded):
        return doc
    return {
        "id": rec.aggregate,
        "name": event.name,
        "type": event.type,
        "config": dict(event.config),
        "added_at": rec.time,
    }
