"""``N_TO_N`` array tasks' children: child i is submitted once child i of each upstream array ended (queued
when they all succeeded, cancelled otherwise); the dispatcher releases them as upstream children end."""

from __future__ import annotations

from typing import Any

from queue_core.domain.arrays import child_id
from queue_core.domain.n_to_n import n_to_n_children, releasable
from queue_core.domain.runs import CANCELLED, PENDING, RUNNING, TERMINAL, apply_run
from queue_core.errors import ConcurrencyError
from queue_core.eventlog.aggregates import folded, load_states
from queue_core.eventlog.events import NewEvent, RunArrayExpanded, RunSubmitted
from queue_core.eventlog.store import EventStore
from queue_core.services.arrays import ArrayChildren

__all__ = ["NToNChildren"]

RETRIES = 10

Doc = dict[str, Any]


def _as_ended(upstream: Doc) -> Doc:
    """An upstream parent that ended without noting every child (cancelled): those it did not note count as
    not succeeded, so nothing waits for them."""
    array = upstream["array"]
    if upstream["status"] not in TERMINAL or len(array["ended"]) == array["size"]:
        return upstream
    succeeded = set(array["ended"]) - set(array["failed"])
    everything = list(range(array["size"]))
    failed = [i for i in everything if i not in succeeded]
    return {**upstream, "array": {**array, "ended": everything, "failed": failed}}


class NToNChildren:
    """The use cases of an ``N_TO_N`` array parent's children; load -> decide -> append, idempotent."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def start(self, parent: str) -> list[str]:
        """Mark the parent running, then release what its upstream arrays allow already; the ids queued."""
        for _ in range(RETRIES):
            events = self.store.load(parent)
            doc = folded(parent, events, apply_run)
            if doc is None or doc["array"] is None or doc["status"] != PENDING:
                break
            expanded = NewEvent(parent, RunArrayExpanded(size=doc["array"]["size"]))
            try:
                self.store.append([expanded], {parent: len(events)})
            except ConcurrencyError:
                continue
            break
        return self.release(parent)

    def release(self, parent: str) -> list[str]:
        """Submit the children whose upstream children all ended: queued if they all succeeded, else cancelled
        with the reason; the ids queued, for RQ."""
        for _ in range(RETRIES):
            events = self.store.load(parent)
            doc = folded(parent, events, apply_run)
            if doc is None or doc["array"] is None or doc["status"] != RUNNING or not doc["array"].get("upstream"):
                return []
            submitted = events[0].event
            assert isinstance(submitted, RunSubmitted)
            loaded = load_states(self.store, doc["array"]["upstream"], apply_run)
            upstream = [_as_ended(loaded[u][0]) for u in doc["array"]["upstream"] if u in loaded]
            if len(upstream) != len(doc["array"]["upstream"]):
                return []
            run, blocked = releasable(doc["array"], upstream)
            versions = self.store.versions([child_id(parent, i) for i in [*run, *blocked]])
            run = [i for i in run if versions[child_id(parent, i)] == 0]
            blocked = {i: t for i, t in blocked.items() if versions[child_id(parent, i)] == 0}
            if not run and not blocked:
                return []
            batch, expected = n_to_n_children(parent, submitted, run, blocked)
            try:
                self.store.append(batch, expected)
            except ConcurrencyError:
                continue
            after = folded(parent, self.store.load(parent), apply_run)
            if after is not None and after["status"] == CANCELLED:
                ArrayChildren(self.store).cancel_children(parent, after["array"]["size"])
                return []
            return [child_id(parent, i) for i in run]
        return []
