"""Pools: named numbers of run slots shared by the runs that name them; the fold and the decisions."""

from __future__ import annotations

from typing import Any

from queue_core.errors import AlreadyExists, NotFound, PoolInUse, Remedy
from queue_core.eventlog.events import Event, PoolCreated, PoolDeleted, PoolResized, Recorded

__all__ = ["POOL_EVENTS", "apply_pool", "decide_create", "decide_delete", "decide_resize", "pool_aggregate"]

POOL_EVENTS = frozenset({"PoolCreated", "PoolResized", "PoolDeleted"})

Doc = dict[str, Any]


def pool_aggregate(name: str) -> str:
    """The aggregate of the pool named ``name``: the name is the identity, so two racing creates have one winner
    (both expect the aggregate at the version they saw it free)."""
    return f"pool:{name}"


def apply_pool(doc: Doc | None, rec: Recorded) -> Doc | None:
    """Fold one pool event; a deleted pool is no document (its name is free again)."""
    event = rec.event
    if isinstance(event, PoolCreated):
        return {"name": event.name, "slots": event.slots, "created_at": rec.time, "updated_at": rec.time}
    if doc is None:
        return None
    if isinstance(event, PoolResized):
        return {**doc, "slots": event.slots, "updated_at": rec.time}
    if isinstance(event, PoolDeleted):
        return None
    return doc


def _missing(name: str) -> NotFound:
    return NotFound(f"no pool named {name!r}", remedy=Remedy.CREATE_POOL, subject=name)


def decide_create(doc: Doc | None, name: str, slots: int) -> list[Event]:
    if doc is not None:
        raise AlreadyExists(f"pool {name!r} already exists ({doc['slots']} slots)")
    return [PoolCreated(name=name, slots=slots)]


def decide_resize(doc: Doc | None, name: str, slots: int) -> list[Event]:
    """A new number of slots; below what runs hold now is allowed: they keep theirs, new ones wait."""
    if doc is None:
        raise _missing(name)
    return [] if doc["slots"] == slots else [PoolResized(name=name, slots=slots)]


def decide_delete(doc: Doc | None, name: str, users: int) -> list[Event]:
    """Delete a pool no run holds or waits for (``users`` of them do); refused while one does."""
    if doc is None:
        raise _missing(name)
    if users:
        raise PoolInUse(f"pool {name!r} is in use: {users} run(s) hold or wait for its slots; cancel them or wait")
    return [PoolDeleted(name=name)]
