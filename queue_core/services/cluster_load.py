"""What each cluster has now: the workers the store sees listening on its queue, and the runs that wait."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import ReadModels

__all__ = ["MAX_PENDING_COUNTED", "cluster_load"]

MAX_PENDING_COUNTED = 100_000


def _live_workers(store: EventStore, clusters: list[str]) -> dict[str, list[str]]:
    """The names of the workers in RQ's registry of each cluster's queue whose own key is still there (a
    worker killed without a goodbye stays in the registry until RQ cleans it, but its key expires)."""
    pipe = store.redis.pipeline(transaction=False)
    for name in clusters:
        pipe.smembers(store.keys.rq_workers_of(name))
    registered = [sorted(m.decode() if isinstance(m, bytes) else str(m) for m in found) for found in pipe.execute()]
    for members in registered:
        for key in members:
            pipe.exists(key)
    alive = iter(pipe.execute())
    return {
        name: [key.rpartition(":")[2] for key in members if next(alive)]
        for name, members in zip(clusters, registered, strict=True)
    }


def cluster_load(store: EventStore, read_models: ReadModels, clusters: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Per cluster: ``workers_seen`` (the names of the live workers on its queue, wherever they run) and
    ``waiting`` (its runs still PENDING: submitted, queued, held by the gate or waiting to retry)."""
    names = list(clusters)
    read_models.catch_up()
    pending = read_models.get_many("runs", read_models.newest("runs", "status:PENDING", 0, MAX_PENDING_COUNTED))
    waiting = Counter(doc["cluster"] for doc in pending if doc)
    workers = _live_workers(store, names)
    return {name: {"workers_seen": workers[name], "waiting": waiting[name]} for name in names}
