"""The run use cases: read a run (now or as it was), list runs, cancel, wait for the end, read its output."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson

from queue_core.domain.names import is_id
from queue_core.domain.runs import (
    CANCELLED,
    PENDING,
    RUNNING,
    TERMINAL,
    apply_run,
    array_view,
    decide_cancel,
    public_view,
)
from queue_core.errors import (
    AlreadyExists,
    AlreadyTerminal,
    ConcurrencyError,
    InvalidInput,
    NotFound,
    Quarantined,
    WaitTimeout,
)
from queue_core.eventlog.aggregates import folded, load_state
from queue_core.eventlog.events import NewEvent
from queue_core.eventlog.runlog import LogLine, RunLog
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.history import Phase, timeline, waiting_phase
from queue_core.readmodels.materialized import ReadModels
from queue_core.readmodels.timetravel import runs_as_of, state_as_of
from queue_core.services.arrays import ArrayChildren
from queue_core.specs.tags import check_tag

__all__ = ["RunService"]

Doc = dict[str, Any]
CANCEL_RETRIES = 5
PAGE = 500  # ids read from an index at a time while filtering a listing
BUSY_LOG_PAUSE_SECONDS = 0.02  # a wait woken by other runs' events looks again after this: 50 looks a second at most


class RunService:
    """Runs on one store: each method loads the run's own events, decides, appends."""

    def __init__(self, store: EventStore, read_models: ReadModels, run_log: RunLog) -> None:
        self.store = store
        self.read_models = read_models
        self.run_log = run_log
        self.arrays = ArrayChildren(store, read_models)

    def document(self, run_id: str, as_of: str = "+") -> Doc:
        """The run's whole document (as of position ``as_of``); ``NotFound`` if there is none.

        A quarantined run (its history cannot be folded) is its last good state from the read models,
        with ``quarantined`` saying why.
        """
        try:
            doc, _ = load_state(self.store, run_id, apply_run, as_of) if is_id(run_id) else (None, 0)
        except Quarantined as exc:
            if as_of != "+":
                raise
            self.read_models.catch_up()
            last_good = self.read_models.get("runs", run_id)
            if last_good is None:
                raise
            doc = {**last_good, "quarantined": str(exc)}
        if doc is None:
            raise NotFound(f"no run with id {run_id}" + ("" if as_of == "+" else " at that point"))
        return doc

    def get(self, run_id: str, as_of: str = "+") -> Doc:
        """The run as ``status --json`` shows it."""
        doc = self.document(run_id, as_of)
        view = public_view(doc)
        if view["array"] is not None:  # public_view's ``.get``: a quarantined run's last good doc may predate it
            counts = self.arrays.counts(doc, as_of)
            if "concurrency" in doc["array"] and doc["status"] in TERMINAL and counts[PENDING]:
                # A for-each's children its window never let in before the parent was cancelled: never to start.
                counts = {**counts, CANCELLED: counts[CANCELLED] + counts[PENDING], PENDING: 0}
            view["array"] = array_view(doc["array"], counts)
        if doc.get("quarantined"):
            view["quarantined"] = doc["quarantined"]
        return view

    def list_runs(
        self,
        status: str | None = None,
        definition: str | None = None,
        limit: int | None = 100,
        as_of: str = "+",
        tag: str | None = None,
    ) -> list[Doc]:
        """Runs newest first, filtered by status, definition name and tag; ``as_of``: as they were then."""
        if tag is not None:
            check_tag(tag)
        if as_of != "+":
            found = runs_as_of(
                state_as_of(self.store, as_of), status and status.upper(), definition, None if tag else limit
            )
            found = [view for view in found if tag is None or tag in (view["tags"] or ())]  # None: folded before tags
            return found if limit is None else found[:limit]
        self.read_models.catch_up()
        wanted = {
            index: (field, value)
            for index, field, value in (
                (f"status:{(status or '').upper()}", "status", status and status.upper()),
                (f"definition:{definition}", "definition", definition),
                (f"tag:{tag}", "tags", tag),
            )
            if value
        }
        index = next(iter(wanted), "all")  # read the first filter's index; the others are checked on each run
        others = [pair for key, pair in wanted.items() if key != index]

        def matches(doc: Doc) -> bool:
            # ``.get``: a run moved to the cold tier before tags existed has none.
            return all(value in doc.get("tags", ()) if f == "tags" else doc[f] == value for f, value in others)

        results: list[tuple[float, Doc]] = []
        offset = 0
        while limit is None or len(results) < limit:
            ids = self.read_models.newest("runs", index, offset, PAGE)
            if not ids:
                break
            for doc in self.read_models.get_many("runs", ids):
                if doc and matches(doc):
                    results.append((doc["order"], public_view(doc)))
            offset += PAGE
        if self.store.redis.scard(self.store.keys.compacted):  # runs moved to the cold tier: theirs too
            for _entity, order, raw in self.store.cold.window("runs", [index], None if others else limit):
                doc = orjson.loads(raw)
                if matches(doc):
                    results.append((order, public_view(doc)))
            results.sort(key=lambda pair: pair[0], reverse=True)
        views = [view for _, view in results]
        return views if limit is None else views[:limit]

    def cancel_tagged(self, tag: str, status: str | None = None, count_only: bool = False) -> list[str]:
        """Cancel every run tagged ``tag`` that has not ended (in ``status`` only, if given); their ids.

        A run that ends while this goes is left as it ended (not an error); ``count_only`` cancels nothing.
        """
        wanted = [status.upper()] if status else [PENDING, RUNNING]
        if any(s not in (PENDING, RUNNING) for s in wanted):
            raise InvalidInput(f"{status!r}: only PENDING or RUNNING runs can be cancelled", "status")
        ids = [run["id"] for s in wanted for run in self.list_runs(status=s, tag=tag, limit=None)]
        if count_only:
            return ids
        cancelled = []
        for run_id in ids:
            try:
                self.cancel(run_id)
            except AlreadyTerminal:
                continue
            cancelled.append(run_id)
        return cancelled

    def cancel(self, run_id: str) -> Doc:
        """Cancel a run that has not ended; a running attempt's process group is killed by its worker."""
        for _ in range(CANCEL_RETRIES):
            try:
                doc, version = load_state(self.store, run_id, apply_run) if is_id(run_id) else (None, 0)
            except Quarantined:
                # Nothing decides from a history that cannot be folded: the operator's cancel is decided on
                # the last good state and recorded after it; a cancel is folded even into a quarantined entity.
                doc, version = self.document(run_id), self.store.version(run_id)
            if doc is None:
                raise NotFound(f"no run with id {run_id}")
            events = decide_cancel(doc)
            try:
                self.store.append([NewEvent(run_id, e) for e in events], {run_id: version})
            except ConcurrencyError:
                continue  # it moved (started, finished): decide again on the new state
            if public_view(doc)["array"] is not None:  # an array job's parent: its children too, in chunks
                self.arrays.cancel_children(run_id, doc["array"]["size"])
            return self.get(run_id)
        raise AlreadyExists(f"run {run_id} kept changing; cancel again")

    def wait(self, run_id: str, timeout: float | None = None) -> Doc:
        """Block until the run ends; ``WaitTimeout`` after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        # The run's own events, folded as they land (one blocking read each); an array job's parent is counted
        # (its children read) once, at the end, by ``get``.
        doc, last, version = self._folded_now(run_id)
        while True:
            if doc["status"] in TERMINAL:
                return self.get(run_id)
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise WaitTimeout(f"run {run_id} is still {doc['status']} after {timeout:g} s")
            block = 1000 if remaining is None else max(1, min(1000, int(remaining * 1000)))
            looked = time.monotonic()
            landed = self.store.follow(last, block, count=100, aggregate=run_id)
            if not landed and time.monotonic() - looked < BUSY_LOG_PAUSE_SECONDS:
                # Woken by other runs' events: on a busy log, looked at no more often than this.
                time.sleep(BUSY_LOG_PAUSE_SECONDS)
            if not landed:
                continue
            try:  # events that do not follow on (a log restored to an earlier point): folded again from its start
                follows = "quarantined" not in doc and landed[0].version == version + 1
                moved = folded(run_id, landed, apply_run, doc) if follows else None
            except Quarantined:
                moved = None
            if moved is None:
                doc, last, version = self._folded_now(run_id)
            else:
                doc, last, version = moved, landed[-1].position, landed[-1].version

    def _folded_now(self, run_id: str) -> tuple[Doc, str, int]:
        """The run's document, the position of its last event and its version (a quarantined run: its last good
        state, with ``quarantined``); ``NotFound`` if there is none."""
        events = self.store.load(run_id) if is_id(run_id) else []
        try:
            doc = folded(run_id, events, apply_run)
        except Quarantined:
            doc = None
        last = events[-1].position if events else "0"
        return (doc if doc is not None else self.document(run_id)), last, len(events)

    def logs(self, run_id: str, follow: bool = False) -> Iterator[LogLine]:
        """The run's output lines; with ``follow``, new ones as they come until the run ends."""
        self.document(run_id)
        after = "0"
        for line in self.run_log.iter_all(run_id):
            after = line.position
            yield line
        while follow:
            ended = self.get(run_id)["status"] in TERMINAL
            lines = self.run_log.follow(run_id, after, block_ms=200)
            for line in lines:
                after = line.position
                yield line
            if ended and not lines:
                return

    def timeline(self, run_id: str, as_of: str = "+") -> list[Phase]:
        """Where a run's time went: each phase of its life, per attempt (and its wait in a workflow)."""
        doc = self.document(run_id, as_of)
        phases = timeline(self.store.load(run_id, as_of))
        if doc.get("workflow_run"):
            waited = waiting_phase(self.store.load(doc["workflow_run"], as_of), doc["task"], doc["submitted_at"])
            if waited is not None:
                phases.insert(0, waited)
        return phases
