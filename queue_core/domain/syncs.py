"""The state of a DATA_SYNC between one source, one target and one watermark column, folded from its events."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from queue_core.domain.lineage import dataset_key
from queue_core.eventlog.events import Recorded, SyncWatermarkRecorded

__all__ = ["apply_sync", "recorded_event", "sync_id"]

_IDS = uuid.UUID("6b1f9d2e-3a47-4c1e-9f0a-8d2c5e7b4a13")


def sync_id(sync: Mapping[str, Any]) -> str:
    """The aggregate holding the watermark of a sync: one per source, target and watermark column."""
    parts = (dataset_key(sync["source"]["dataset"]), dataset_key(sync["target"]["dataset"]), sync["watermark"])
    return str(uuid.uuid5(_IDS, "/".join(parts)))


def apply_sync(doc: dict[str, Any] | None, rec: Recorded) -> dict[str, Any] | None:
    """Fold one recorded watermark: the latest is where the next incremental sync starts."""
    event = rec.event
    if not isinstance(event, SyncWatermarkRecorded):
        return doc
    return {
        "id": rec.aggregate,
        "source": event.source,
        "target": event.target,
        "column": event.column,
        "value": event.value,
        "type": event.value_type,
        "run": event.run,
        "time": rec.time,
        "syncs": (doc["syncs"] if doc else 0) + 1,
    }


def recorded_event(
    sync: Mapping[str, Any], state: Mapping[str, Any] | None, result: Mapping[str, Any], run: str, attempt: int
) -> SyncWatermarkRecorded:
    """The watermark a sync run leaves, from the runner's ``result["sync"]``: the highest value it moved, or
    the one it started from when it moved no row."""
    moved = result["sync"]
    value, kind = moved["value"], moved["type"]
    if value is None and state is not None:
        value, kind = state["value"], state["type"]
    return SyncWatermarkRecorded(
        source=dataset_key(sync["source"]["dataset"]),
        target=dataset_key(sync["target"]["dataset"]),
        column=sync["watermark"],
        value=value,
        value_type=kind or "",
        rows=int(moved["rows"]),
        mode=sync["mode"],
        run=run,
        attempt=attempt,
    )
