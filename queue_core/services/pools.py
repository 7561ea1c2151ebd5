"""Pools: create, resize, delete, list and show them, with the slots their runs hold and the runs that wait."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from queue_core.domain.gate import holds_slots, is_waiting
from queue_core.domain.pools import apply_pool, decide_create, decide_delete, decide_resize, pool_aggregate
from queue_core.errors import AlreadyExists, ConcurrencyError, InvalidInput, Remedy
from queue_core.eventlog.aggregates import load_state
from queue_core.eventlog.events import NewEvent
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import ReadModels
from queue_core.specs.checks import name as check_name
from queue_core.specs.run_control import check_slots

__all__ = ["MAX_GATED_RUNS", "PoolService", "check_pool_of", "gated_runs"]

MAX_GATED_RUNS = 100_000  # the gated runs read at most at once (holding or waiting for slots)


def gated_runs(read_models: ReadModels) -> list[dict[str, Any]]:
    """The runs that hold or wait for slots, as folded (oldest first)."""
    ids = read_models.newest("runs", "gated", 0, MAX_GATED_RUNS)
    return [d for d in read_models.get_many("runs", ids) if d]


def check_pool_of(store: EventStore, job: Mapping[str, Any], field: str) -> None:
    """Refuse a job naming a pool that does not exist, or more of its slots than it has (it would never start).

    ``field`` is where the job sits (``config`` of a definition, a workflow task's path).
    """
    if "pool" not in job:
        return
    name = job["pool"]
    doc, _ = load_state(store, pool_aggregate(name), apply_pool)
    if doc is None:
        raise InvalidInput(f"no pool named {name!r}", f"{field}.pool", remedy=Remedy.CREATE_POOL, subject=name)
    if job["poolSlots"] > doc["slots"]:
        slots, need = doc["slots"], job["poolSlots"]
        raise InvalidInput(f"pool {name!r} has {slots} slot(s), fewer than {need}", f"{field}.poolSlots")


class PoolService:
    """The pools of one store: each is the aggregate ``pool:NAME``, its slots folded from its events."""

    def __init__(self, store: EventStore, read_models: ReadModels) -> None:
        self.store = store
        self.read_models = read_models

    def _load(self, name: str) -> tuple[dict[str, Any] | None, int]:
        return load_state(self.store, pool_aggregate(check_name(name, "pool")), apply_pool)

    def _append(self, name: str, events: list[Any], version: int) -> None:
        if not events:
            return
        aggregate = pool_aggregate(name)
        try:
            self.store.append([NewEvent(aggregate, e) for e in events], {aggregate: version})
        except ConcurrencyError as exc:
            raise AlreadyExists(f"pool {name!r} was changed by another writer at the same moment; try again") from exc

    def create(self, name: str, slots: int) -> dict[str, Any]:
        slots = check_slots(slots)
        doc, version = self._load(name)
        self._append(name, decide_create(doc, name, slots), version)
        return self.show(name)

    def resize(self, name: str, slots: int) -> dict[str, Any]:
        slots = check_slots(slots)
        doc, version = self._load(name)
        self._append(name, decide_resize(doc, name, slots), version)
        return self.show(name)

    def delete(self, name: str) -> None:
        doc, version = self._load(name)
        users = len(self._runs_of(name))
        self._append(name, decide_delete(doc, name, users), version)

    def _runs_of(self, name: str) -> list[dict[str, Any]]:
        self.read_models.catch_up()
        return [d for d in gated_runs(self.read_models) if d["job"].get("pool") == name]  # absent: no pool

    def show(self, name: str) -> dict[str, Any]:
        """The pool with ``used`` (slots held now), ``running``, ``waiting`` (runs held back) and their ids."""
        doc, _ = self._load(name)
        decide_resize(doc, name, 1)  # NotFound when there is no such pool
        assert doc is not None
        return self._with_use(doc, self._runs_of(name))

    def all(self) -> list[dict[str, Any]]:
        self.read_models.catch_up()
        runs = gated_runs(self.read_models)
        pools = sorted((d for d in self.read_models.all("pools").values() if d), key=lambda d: d["name"])
        return [self._with_use(p, [d for d in runs if d["job"].get("pool") == p["name"]]) for p in pools]

    @staticmethod
    def _with_use(pool: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
        holding = [d for d in runs if holds_slots(d)]
        waiting = [d for d in runs if is_waiting(d)]
        return {
            **pool,
            "used": sum(d["job"]["poolSlots"] for d in holding),
            "holding": [d["id"] for d in holding],
            "waiting": [d["id"] for d in waiting],
        }
