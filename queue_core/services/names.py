"""Unique live names: who holds one, and the claim that goes in front of the batch creating its owner."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from queue_core.domain.names import apply_name, name_aggregate
from queue_core.errors import AlreadyExists
from queue_core.eventlog.aggregates import load_state
from queue_core.eventlog.events import NameClaimed, NewEvent
from queue_core.eventlog.store import EventStore

__all__ = ["owner_of", "unclaimed", "with_claim"]


def owner_of(store: EventStore, kind: str, name: str, until: str = "+") -> tuple[str | None, int]:
    """Who holds ``name`` among live things of ``kind`` (as of ``until``), and the name aggregate's version."""
    doc, version = load_state(store, name_aggregate(kind, name), apply_name, until)
    return (doc["owner"] if doc else None), version


def unclaimed(store: EventStore, kind: str, name: str) -> int:
    """The version of a free name's aggregate, to claim it at; ``AlreadyExists`` when it is held."""
    owner, version = owner_of(store, kind, name)
    if owner is not None:
        raise AlreadyExists(f"{kind} {name!r} already exists")
    return version


def with_claim(
    kind: str, name: str, owner: str, name_version: int, batch: Sequence[NewEvent], expected: Mapping[str, int]
) -> tuple[list[NewEvent], dict[str, int]]:
    """``batch`` with the claim of ``name`` for ``owner`` in front, and the name expected at ``name_version``.

    Appended all-or-nothing, two racing creates of one name have one winner: the other's claim fails the
    version check, and nothing of its batch is written.
    """
    name_agg = name_aggregate(kind, name)
    claim = NewEvent(name_agg, NameClaimed(kind=kind, name=name, owner=owner))
    return [claim, *batch], {name_agg: name_version, **expected}
