"""Depots: add one under a name claimed once, look one up, list them."""

from __future__ import annotations

import uuid
from typing import Any

from queue_core.domain.depots import DEPOT_KIND, apply_depot
from queue_core.domain.lineage import dataset_key
from queue_core.errors import AlreadyExists, ConcurrencyError, NotFound, Remedy
from queue_core.eventlog.aggregates import load_state
from queue_core.eventlog.events import DepotAdded, NewEvent
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import ReadModels
from queue_core.services.names import owner_of, unclaimed, with_claim
from queue_core.specs.depots import check_identifier, depot_config

__all__ = ["add_depot", "get_depot", "lineage", "list_depots"]


def _owner(store: EventStore, name: str) -> tuple[str | None, int]:
    return owner_of(store, DEPOT_KIND, name)


def get_depot(store: EventStore, name: str) -> dict[str, Any]:
    """The depot named ``name``; ``NotFound`` when there is none."""
    check_identifier(name, "depot", "depot name")
    owner, _ = _owner(store, name)
    doc = load_state(store, owner, apply_depot)[0] if owner else None
    if doc is None:
        raise NotFound(f"no depot named {name!r}", remedy=Remedy.ADD_DEPOT, subject=name)
    return doc


def list_depots(read_models: ReadModels) -> list[dict[str, Any]]:
    """Every depot, by name."""
    read_models.catch_up()
    return sorted((d for d in read_models.all("depots").values() if d), key=lambda d: d["name"])


def add_depot(store: EventStore, name: str, kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """Register a depot; its name is claimed once, so a second add of the same name is refused."""
    check_identifier(name, "depot", "depot name")
    config = depot_config(kind, options)
    name_version = unclaimed(store, DEPOT_KIND, name)
    depot_id = str(uuid.uuid4())
    added = NewEvent(depot_id, DepotAdded(name=name, type=kind, config=config))
    try:
        recorded = store.append(*with_claim(DEPOT_KIND, name, depot_id, name_version, [added], {depot_id: 0}))
    except ConcurrencyError as exc:
        raise AlreadyExists(f"depot {name!r} was just added by another writer") from exc
    doc = apply_depot(None, recorded[-1])
    assert doc is not None
    return doc


def lineage(read_models: ReadModels, dataset: str) -> dict[str, Any]:
    """Which runs wrote ``dataset`` (an address), oldest first, with rows, schema fingerprint and inputs."""
    key = dataset_key(dataset)
    read_models.catch_up()
    return read_models.get("datasets", key) or {"dataset": key, "writes": []}
