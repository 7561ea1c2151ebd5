"""Clusters: named pools of workers, each one RQ queue; ``default`` always exists. A cluster's ``engine`` is
the SQL engine its pipelines run on when they name none (``duckdb`` unless it was registered with another)."""

from __future__ import annotations

import uuid
from typing import Any

from queue_core.eventlog.events import ClusterRegistered, Recorded

__all__ = ["DEFAULT_CLUSTER", "apply_cluster", "builtin_default"]

DEFAULT_CLUSTER = "default"
DEFAULT_CLUSTER_WORKERS = 2
DEFAULT_ENGINE = "duckdb"
CLUSTER_KIND = "cluster"
# The default cluster needs no event to exist; its id is derived so it is the same everywhere.
DEFAULT_CLUSTER_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "jobledger:cluster:default"))


def builtin_default() -> dict[str, Any]:
    return {
        "id": DEFAULT_CLUSTER_ID,
        "name": DEFAULT_CLUSTER,
        "workers": DEFAULT_CLUSTER_WORKERS,
        "instance_type": "local",
        "engine": DEFAULT_ENGINE,
        "registered_at": None,
        "builtin": True,
    }


def apply_cluster(doc: dict[str, Any] | None, rec: Recorded) -> dict[str, Any] | None:
    """Fold one cluster event into the cluster's document."""
    event = rec.event
    if isinstance(event, ClusterRegistered):
        return {
            "id": rec.aggregate,
            "name": event.name,
            "workers": event.workers,
            "instance_type": event.instance_type,
            "engine": event.engine,
            "registered_at": rec.time,
            "builtin": False,
        }
    return doc
