"""For-each tasks' children: the dispatcher submits them a window at a time as earlier ones end; a repair's
run counts the children the previous round succeeded on as done."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from queue_core.domain.arrays import child_id, decide_children_ended
from queue_core.domain.for_each import carried_indexes, for_each_children, window
from queue_core.domain.runs import CANCELLED, PENDING, RUNNING, apply_run
from queue_core.errors import ConcurrencyError
from queue_core.eventlog.aggregates import folded
from queue_core.eventlog.events import Event, NewEvent, RunArrayExpanded, RunForEachCarried, RunSubmitted, RunSucceeded
from queue_core.eventlog.store import EventStore
from queue_core.services.arrays import ArrayChildren

__all__ = ["ForEachChildren", "is_for_each"]

RETRIES = 10  # other dispatchers move the same parent: decide again on a conflict
FOLDS_KEPT = 1000  # running for-each parents whose fold is kept between two looks

Doc = dict[str, Any]


def is_for_each(doc: Doc | None) -> bool:
    """Whether ``doc`` is a for-each task's run (an array parent with a window)."""
    return doc is not None and doc["array"] is not None and "concurrency" in doc["array"]


class ForEachChildren:
    """The use cases of a for-each parent's children; each is load -> decide -> append, idempotent."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        # parent -> (doc, version, last position, its RunSubmitted): a window moves on at every child's end,
        # so the parent's fold is kept and only its new events are read (its history grows with its children)
        self._folds: dict[str, tuple[Doc | None, int, str, RunSubmitted | None]] = {}
        self._epoch = store.epoch

    def _load(self, parent: str, cached: bool = False) -> tuple[Doc | None, int, RunSubmitted | None]:
        """The parent's document, version and submission; ``cached``: folding on from the last look."""
        if self.store.epoch != self._epoch:  # another store: nothing cached from the old one holds
            self._folds.clear()
            self._epoch = self.store.epoch
        doc, version, last, first = self._folds.get(parent, (None, 0, "", None)) if cached else (None, 0, "", None)
        new = self.store.load_since(parent, version)
        if last and new and new[0].version != version + 1:  # the log no longer continues the fold: read it all
            self._folds.pop(parent, None)
            return self._load(parent)
        try:
            for rec in new:
                doc = apply_run(doc, rec)
        except Exception:
            self._folds.pop(parent, None)
            events = self.store.load(parent)
            return folded(parent, events, apply_run), len(events), None  # Quarantined raised if it does not fold
        if first is None and new and isinstance(new[0].event, RunSubmitted):
            first = new[0].event
        version, last = version + len(new), new[-1].position if new else last
        if cached and doc is not None and doc["status"] == RUNNING:
            if len(self._folds) >= FOLDS_KEPT:
                self._folds.clear()
            self._folds[parent] = (doc, version, last, first)
        else:
            self._folds.pop(parent, None)
        return doc, version, first

    def start(self, parent: str) -> list[str]:
        """Mark the parent running (carrying, on a repair, what the previous round succeeded on) with its first
        window in the same append; the ids of the children submitted, for RQ."""
        for _ in range(RETRIES):
            doc, version, submitted = self._load(parent)
            if not is_for_each(doc) or submitted is None or doc is None:
                return []
            if doc["status"] != PENDING:
                break  # started already (a redelivery, another dispatcher): only the window is left to fill
            events: list[Event] = []
            carried, previous = self._carried(submitted)
            if carried and previous is not None:
                events.append(RunForEachCarried(indexes=tuple(carried), previous=previous))
            events.append(RunArrayExpanded(size=doc["array"]["size"]))
            if len(carried) == doc["array"]["size"]:
                events.append(RunSucceeded(attempt=1))  # nothing left to run
                indexes: list[int] = []
            else:
                indexes = window({**doc["array"], "ended": carried, "carried": carried})
            batch, expected = for_each_children(parent, submitted, indexes)
            try:
                self.store.append([*(NewEvent(parent, e) for e in events), *batch], {parent: version, **expected})
            except ConcurrencyError:
                continue
            return [child_id(parent, i) for i in indexes]
        return self.move_on(parent, {})[1]

    def _carried(self, submitted: RunSubmitted) -> tuple[list[int], str | None]:
        """On a repair, the children the previous round's run succeeded on with the same item; and that run."""
        assert submitted.for_each is not None
        previous = submitted.for_each.get("previous")
        if previous is None:
            return [], None
        doc, _, first = self._load(previous)
        if not is_for_each(doc) or first is None or first.for_each is None or doc is None:
            return [], None
        return carried_indexes(submitted.for_each["items"], doc, first.for_each["items"]), previous

    def move_on(self, parent: str, ended: Mapping[int, str]) -> tuple[bool, list[str]]:
        """Note children's ends on the parent (``ArrayChildren.note_ended``'s rule, on the fold kept for the
        window) and submit the children the window then lets in, at most ``concurrency`` submitted and not
        ended, in one append guarded by the parent's version (a parent cancelled meanwhile gets none).
        Whether the parent ended, and the ids submitted, for RQ."""
        for _ in range(RETRIES):
            doc, version, submitted = self._load(parent, cached=True)
            if not is_for_each(doc) or submitted is None or doc is None:
                return False, []
            events = decide_children_ended(doc, ended)
            indexes: list[int] = []
            if doc["status"] == RUNNING and len(events) <= 1:  # still running once these are noted
                noted = [*doc["array"]["ended"], *(events[0].indexes if events else ())]  # type: ignore[attr-defined]
                indexes = window({**doc["array"], "ended": noted})
            versions = self.store.versions([parent, *(child_id(parent, i) for i in indexes)])
            if versions[parent] < version:  # the log lost what the kept fold saw (a restore): fold it afresh
                self._folds.pop(parent, None)
                continue
            new = [i for i in indexes if versions[child_id(parent, i)] == 0]
            batch, expected = for_each_children(parent, submitted, new)
            if not events and not batch:
                return False, []
            try:
                self.store.append([*(NewEvent(parent, e) for e in events), *batch], {**expected, parent: version})
            except ConcurrencyError:
                self._folds.pop(parent, None)  # another writer moved it (or a child): look again
                continue
            if not events and self.store.versions([parent])[parent] != version:  # unguarded: did it move?
                after, _, _ = self._load(parent, cached=True)
                if after is not None and after["status"] == CANCELLED:
                    ArrayChildren(self.store).cancel_children(parent, after["array"]["size"])
                    return False, []
            return len(events) > 1, [child_id(parent, i) for i in new]
        return False, []
