"""Versioned job resources (scripts and archives): their kinds and the fold of their events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from queue_core.errors import InvalidInput
from queue_core.eventlog.events import Recorded, ResourceAdded

__all__ = [
    "ARCHIVE_KINDS",
    "MAX_RESOURCE_BYTES",
    "REDIS_STORAGE",
    "RESOURCE_KIND",
    "RESOURCE_KINDS",
    "S3_PREFIX",
    "apply_resource",
    "is_archive",
    "kind_of",
    "revision_of",
]

RESOURCE_KIND = "resource"
RESOURCE_KINDS = ("sh", "py", "sql", "zip", "tar", "tar.gz")
ARCHIVE_KINDS = frozenset({"zip", "tar", "tar.gz"})
MAX_RESOURCE_BYTES = 256 * 1024 * 1024
S3_PREFIX = "jobledger/resources/"
REDIS_STORAGE = "redis"


def kind_of(filename: str) -> str:
    """The resource kind of a file name by its extension, or ``InvalidInput``."""
    lower = filename.lower()
    for kind, suffixes in (("tar.gz", (".tar.gz", ".tgz")), ("tar", (".tar",)), ("zip", (".zip",))):
        if lower.endswith(suffixes):
            return kind
    suffix = Path(lower).suffix.lstrip(".")
    if suffix in ("sh", "py", "sql"):
        return suffix
    raise InvalidInput(f"{filename!r} is not one of {', '.join('.' + k for k in RESOURCE_KINDS)}", "resource")


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


def is_archive(kind: str) -> bool:
    return kind in ARCHIVE_KINDS
