"""Versioned job resources (scripts and archives): the fold of their events."""

from __future__ import annotations

from typing import Any

from queue_core.eventlog.events import Recorded, ResourceAdded

__all__ = [
    "MAX_RESOURCE_BYTES",
    "REDIS_STORAGE",
    "RESOURCE_KIND",
    "S3_PREFIX",
    "apply_resource",
    "revision_of",
]

RESOURCE_KIND = "resource"
MAX_RESOURCE_BYTES = 256 * 1024 * 1024
S3_PREFIX = "jobledger/resources/"
REDIS_STORAGE = "redis"


def revision_of(version: dict[str, Any]) -> str:
    """The source revision a run of this resource version records."""
    return f"v{version['version']} sha256:{version['checksum']}"


def apply_resource(doc: dict[str, Any] | None, rec: Recorded) -> dict[str, Any] | None:
    """Fold one resource event into the resource's document (every version, newest last)."""
    event = rec.event
    if not isinstance(event, ResourceAdded):
        return doc
    entry = {
        "version": event.resource_version,
        "checksum": event.checksum,
        "kind": event.kind,
        "size": event.size,
        "filename": event.filename,
        "storage": event.storage,
        "added_at": rec.time,
    }
    if doc is None:
        return {"id": rec.aggregate, "name": event.name, "version": 1, "created_at": rec.time, "versions": [entry]}
    return {**doc, "version": event.resource_version, "versions": [*doc["versions"], entry]}
