"""The pipeline a DATA_SYNC or BUILTIN job runs, with the depots it names and a sync's last watermark."""

from __future__ import annotations

from typing import Any

from queue_core.eventlog.store import EventStore
from queue_core.services.depots import get_depot
from queue_core.services.syncs import SyncStates
from queue_core.specs.builtins import builtin_sync, job_depots, job_pipeline

__all__ = ["generated_pipeline"]


def generated_pipeline(
    store: EventStore, states: SyncStates, job: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The pipeline the job runs, and its sync section (None: a built-in that is no sync).

    An incremental sync reads past the watermark its last run recorded; ``NotFound`` for a depot gone since
    the job was defined.
    """
    depots = {name: get_depot(store, name) for name in sorted(job_depots(job))}
    types = {name: depot["type"] for name, depot in depots.items()}
    sync = builtin_sync(job)
    after = states.last(sync) if sync is not None and sync["mode"] == "incremental" else None
    return job_pipeline(job, types, after), sync
