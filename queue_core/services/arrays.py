"""Array jobs' children: submitted in chunks by the dispatcher, noted on their parent as they end, cancelled
with it, and counted for its status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from queue_core.domain.arrays import ENDED, cancel_child, child_id, child_submissions, decide_children_ended
from queue_core.domain.runs import CANCELLED, PENDING, STATUSES, apply_run
from queue_core.errors import ConcurrencyError
from queue_core.eventlog.aggregates import folded, load_state, load_states
from queue_core.eventlog.events import NewEvent, RunArrayExpanded, RunSubmitted
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import ReadModels

__all__ = ["ArrayChildren"]

CHUNK = 500  # children per append: one round trip each, all-or-nothing, a few hundred KiB at most
KEPT_PARENTS = 1000  # parents whose fold is kept between notes of their children's ends
NOTE_RETRIES = 10  # other dispatchers note ends of the same parent: decide again on a conflict


class ArrayChildren:
    """The use cases of an array job's children; each is load -> decide -> append, idempotent."""

    def __init__(self, store: EventStore, read_models: ReadModels | None = None) -> None:
        self.store = store
        self.read_models = read_models
        self._kept: dict[str, tuple[dict[str, Any], int, str]] = {}  # parent -> (doc, version, last position)

    def expand(self, parent: str) -> list[str]:
        """Submit and queue the parent's children (the ones not submitted yet, after a dispatcher died midway)
        and mark the parent running; the ids of the children for RQ; none when the parent ended or was expanded already.
        """
        events = self.store.load(parent)
        doc, version = folded(parent, events, apply_run), len(events)
        if doc is None or doc["array"] is None or doc["status"] != PENDING:
            return []
        submitted = events[0].event
        assert isinstance(submitted, RunSubmitted)
        size = doc["array"]["size"]
        for start in range(0, size, CHUNK):
            indexes = range(start, min(size, start + CHUNK))
            batch, expected = child_submissions(parent, submitted, indexes)
            try:
                self.store.append(batch, expected)
            except ConcurrencyError:
                # Some of these exist (a dispatcher died midway): submit the others.
                versions = self.store.versions(expected)
                for index in [i for i in indexes if versions[child_id(parent, i)] == 0]:
                    one, one_expected = child_submissions(parent, submitted, range(index, index + 1))
                    try:
                        self.store.append(one, one_expected)
                    except ConcurrencyError:
                        continue
        try:
            self.store.append([NewEvent(parent, RunArrayExpanded(size=size))], {parent: version})
        except ConcurrencyError:
            pass  # cancelled meanwhile (its children are cancelled with it), or expanded by another dispatcher
        return [child_id(parent, i) for i in range(size)]

    def note_ended(self, parent: str, ended: Mapping[int, str]) -> bool:
        """Note children's ends on their parent (ending it after its last one); True when the parent ended."""
        for _ in range(NOTE_RETRIES):
            doc, version = self._parent(parent)
            if doc is None:
                return False
            events = decide_children_ended(doc, ended)
            if not events:
                return False
            try:
                self.store.append([NewEvent(parent, e) for e in events], {parent: version})
            except ConcurrencyError:
                continue
            return len(events) > 1
        return False

    def _parent(self, parent: str) -> tuple[dict[str, Any] | None, int]:
        """The parent's document and version: its fold kept from the last look, with only the events since read
        (a big array's parent gains an event per batch of ended children: reading them all each time made
        noting ends quadratic)."""
        kept = self._kept.pop(parent, None)
        if kept is None:
            events = self.store.load(parent)
            doc, version = folded(parent, events, apply_run), len(events)
            position = events[-1].position if events else ""
        else:
            doc, version, position = kept
            try:
                for rec in self.store.load_after(parent, position):
                    doc, version, position = apply_run(doc, rec), version + 1, rec.position
            except Exception:  # a fold that fails: read it whole, as every other look does
                doc, version = load_state(self.store, parent, apply_run)
                position = ""
        if doc is not None and doc["status"] not in ENDED and position:
            if len(self._kept) >= KEPT_PARENTS:
                self._kept.clear()
            self._kept[parent] = (doc, version, position)
        return doc, version

    def cancel_children(self, parent: str, size: int) -> int:
        """Cancel the parent's children that have not ended, a chunk per append; how many were cancelled.

        A child that moves meanwhile (starts, ends) is looked at again; one that ended stays as it ended.
        """
        cancelled = 0
        for start in range(0, size, CHUNK):
            ids = [child_id(parent, i) for i in range(start, min(size, start + CHUNK))]
            for _ in range(NOTE_RETRIES):
                batch: list[NewEvent] = []
                expected: dict[str, int] = {}
                for run_id, (doc, version) in load_states(self.store, ids, apply_run).items():
                    event = cancel_child(doc)
                    if event is not None:
                        batch.append(NewEvent(run_id, event))
                        expected[run_id] = version
                if not batch:
                    break
                try:
                    self.store.append(batch, expected)
                except ConcurrencyError:
                    continue
                cancelled += len(batch)
                break
        return cancelled

    def counts(self, parent: dict[str, Any], as_of: str = "+") -> dict[str, int]:
        """How many of the parent's children are in each state (the ended ones from the parent itself, which noted
        them): now from the read models; ``as_of`` a past position, from the children's own events up to it."""
        array = parent["array"]
        counts = {status: 0 for status in STATUSES}
        counts.update(array["counts"])
        size, ended = array["size"], set(array["ended"])
        going = [child_id(parent["id"], i) for i in range(size) if i not in ended]
        if self.read_models is None or not going:
            return counts
        if as_of == "+":
            self.read_models.catch_up()
        for start in range(0, len(going), CHUNK * 4):
            chunk = going[start : start + CHUNK * 4]
            if as_of == "+":
                docs = self.read_models.get_many("runs", chunk)
            else:
                states = load_states(self.store, chunk, apply_run, as_of)
                docs = [states[c][0] if c in states else None for c in chunk]
            for doc in docs:
                # An end the parent has not noted yet is counted as the child says; one not submitted yet, PENDING.
                counts[PENDING if doc is None else doc["status"]] += 1
        return counts

    def cancel_children_of(self, run_id: str) -> int:
        """``cancel_children`` when ``run_id`` is an array job's parent that was cancelled; else nothing."""
        doc, _ = load_state(self.store, run_id, apply_run)
        if doc is None or doc["array"] is None or doc["status"] != CANCELLED:
            return 0
        return self.cancel_children(run_id, doc["array"]["size"])
