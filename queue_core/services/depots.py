"""Depots: add one under a name claimed once, look one up, list them."""

from __future__ import annotations

import uuid
from typing import Any

from queue_core.domain.depots import DEPOT_KIND, apply_depot
from queue_core.domain.names import name_aggregate
from queue_core.errors import AlreadyExists, ConcurrencyError, NotFound
from queue_core.eventlog.aggregates import load_state
from queue_core.eventlog.events import DepotAdded, NameClaimed, NewEvent
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import ReadModels
from queue_core.services.names import owner_of
from queue_core.specs.depots import check_identifier, depot_config

__all__ = ["add_depot", "get_depot", "list_depots"]


def _owner(store: EventStore, name: str) -> tuple[str | None, int]:
    return owner_of(store, DEPOT_KIND, name)


def get_depot(store: EventStore, name: str) -> dict[str, Any]:
    """The depot named ``name``; ``NotFound`` when there is none."""
    check_identifier(name, "depot", "depot name")
    owner, _ = _owner(store, name)
    doc = load_state(store, owner, apply_depot)[0] if owner else None
    if doc is None:
        raise NotFound(f"no depot named {name!r}; add it with `jobledger depot add {name} --type ...`")
    return doc


def list_depots(read_models: ReadModels) -> list[dict[str, Any]]:
    """Every depot, by name."""
    read_models.catch_up()
    return sorted((d for d in read_models.all("depots").values() if d), key=lambda d: d["name"])


def add_depot(store: EventStore, name: str, kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """Register a depot; its name is claimed once, so a second add of the same name is refused."""
    check_identifier(name, "depot", "depot name")
    config = depot_config(kind, options)
    owner, name_version = _owner(store, name)
    if owner is not None:
        raise AlreadyExists(f"depot {name!r} already exists")
    depot_id = str(uuid.uuid4())
    name_agg = name_aggregate(DEPOT_KIND, name)
    batch = [
        NewEvent(name_agg, NameClaimed(kind=DEPOT_KIND, name=name, owner=depot_id)),
        NewEvent(depot_id, DepotAdded(name=name, type=kind, config=config)),
    ]
    try:
        recorded = store.append(batch, {name_agg: name_version, depot_id: 0})
    except ConcurrencyError as exc:
        raise AlreadyExists(f"depot {name!r} was just added by another writer") from exc
    doc = apply_depot(None, recorded[-1])
    assert doc is not None
    return doc
