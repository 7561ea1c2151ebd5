"""DATA_SYNC state: the last watermark of a sync, read before it runs and recorded with its success."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from queue_core.domain.syncs import apply_sync, recorded_event, sync_id
from queue_core.errors import ConcurrencyError
from queue_core.eventlog.aggregates import load_state
from queue_core.eventlog.events import Event, NewEvent
from queue_core.eventlog.store import EventStore
from queue_core.services.lifecycle import Claim, RunLifecycle

__all__ = ["SyncStates"]

RECORD_RETRIES = 5


class SyncStates:
    """The watermarks of syncs on one store."""

    def __init__(self, store: EventStore, lifecycle: RunLifecycle) -> None:
        self.store = store
        self.lifecycle = lifecycle

    def last(self, sync: Mapping[str, Any]) -> dict[str, Any] | None:
        """The sync's last recorded watermark (``value``, ``type``, ``run`` ...); None before its first run,
        or for a sync with no watermark column."""
        if sync["watermark"] is None:
            return None
        return load_state(self.store, sync_id(sync), apply_sync)[0]

    def succeed(
        self,
        claim: Claim,
        sync: Mapping[str, Any],
        result: dict[str, Any],
        written: Sequence[Event],
        values: Mapping[str, Any] | None = None,
    ) -> bool:
        """Record the run's success (and the values it published) and, in the same batch, the sync's new
        watermark; False: the run moved on.

        Two syncs of the same pair ending together: the second decides again on the first's watermark.
        """
        if sync["watermark"] is None or "sync" not in result:
            return self.lifecycle.succeed(claim, result, written, values)
        aggregate = sync_id(sync)
        for _ in range(RECORD_RETRIES):
            state, version = load_state(self.store, aggregate, apply_sync)
            event = recorded_event(sync, state, result, claim.run["id"], claim.attempt)
            try:
                beside = [NewEvent(aggregate, event)]
                return self.lifecycle.succeed(claim, result, written, values, beside, {aggregate: version})
            except ConcurrencyError:
                continue
        # Still losing the race: the watermark stays where the other sync left it.
        return self.lifecycle.succeed(claim, result, written, values)
