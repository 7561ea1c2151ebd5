"""Unique live names: each name is an aggregate of its own, so racing claims have one winner."""

from __future__ import annotations

import re
from typing import Any

from .aggregates import load_state
from .events import NameClaimed, NameReleased, Recorded
from .store import EventStore

__all__ = ["apply_name", "is_id", "name_aggregate", "name_key", "owner_of"]

_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


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


def owner_of(store: EventStore, kind: str, name: str, until: str = "+") -> tuple[str | None, int]:
    """Who holds ``name`` among live things of ``kind`` (as of ``until``), and the name aggregate's version."""
    doc, version = load_state(store, name_aggregate(kind, name), apply_name, until)
    return (doc["owner"] if doc else None), version


def is_id(value: str) -> bool:
    """Whether ``value`` is an id as jobledger makes them (a UUID, lowercase), not a name."""
    return _ID.fullmatch(value) is not None
