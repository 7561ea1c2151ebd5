"""Unique live names: each name is an aggregate of its own, so racing claims have one winner."""

from __future__ import annotations

import re
from typing import Any

from queue_core.eventlog.events import NameClaimed, NameReleased, Recorded

__all__ = ["IDEMPOTENCY_KIND", "apply_name", "is_id", "name_aggregate", "name_key"]

IDEMPOTENCY_KIND = "idempotency"  # the kind of name an idempotency key claims for its run
# A UUID, or an array job's child: its parent's UUID and ``_INDEX`` (``domain/arrays.py``).
_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(_[0-9]{1,5})?")


def name_aggregate(kind: str, name: str) -> str:
    """The aggregate id guarding ``name`` among live things of ``kind``."""
    return f"name:{kind}:{name}"


def name_key(kind: str, name: str) -> str:
    """The read-model key of a name."""
    return f"{kind}/{name}"


def apply_name(doc: dict[str, Any] | None, rec: Recorded) -> dict[str, Any] | None:
    """Fold one name event: a claim names its owner, a release frees the name."""
    event = rec.event
    if isinstance(event, NameClaimed):
        return {"kind": event.kind, "name": event.name, "owner": event.owner}
    if isinstance(event, NameReleased):
        return None
    return doc


def is_id(value: str) -> bool:
    """Whether ``value`` is an id as jobledger makes them (a UUID, lowercase), not a name."""
    return _ID.fullmatch(value) is not None
