"""Moving workflow runs forward: load, decide (``domain.workflow_advance``), append with the expected version.

Any number of dispatchers may call ``advance`` for the same workflow run at once: the version check
makes each decision land once, and the loser decides again on what the winner wrote.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from queue_core.domain.runs import PENDING, SUCCEEDED, apply_run
from queue_core.domain.workflow_advance import decide_advance
from queue_core.domain.workflow_runs import apply_workflow_run, is_active, is_going, is_prerun
from queue_core.errors import ConcurrencyError
from queue_core.eventlog.aggregates import load_states
from queue_core.eventlog.events import NewEvent, WorkflowRunWaiting
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import ReadModels
from queue_core.specs.logical_dates import same_logical_date

__all__ = ["WorkflowEngine", "find_reference_run"]

ADVANCE_RETRIES = 20
REFERENCE_SCAN = 2000
SLOT_SCAN = 10_000  # a workflow's newest runs looked at for the ones holding or waiting for its slots
SLOT_REASON = "Waiting for a slot (maxConcurrentRuns {})"

Doc = dict[str, Any]


def find_reference_run(read_models: ReadModels, kind: str, name: str, logical_date: str) -> str | None:
    """A SUCCEEDED run of definition (or workflow) ``name`` for ``logical_date``, from the read models."""
    model, index = ("runs", f"definition:{name}") if kind == "definition" else ("workflow_runs", f"workflow:{name}")
    ids = read_models.newest(model, index, 0, REFERENCE_SCAN)
    for doc in read_models.get_many(model, ids):
        if doc and doc["status"] == SUCCEEDED and same_logical_date(doc.get("logical_date"), logical_date):
            if is_prerun(doc):
                continue  # a pre-run verified the workflow; it stands for no cycle
            return str(doc["id"])
    return None


class WorkflowEngine:
    """Advances workflow runs; keeps each run's fold in memory and reads only what is new since."""

    def __init__(
        self,
        store: EventStore,
        read_models: ReadModels | None = None,
        may_start_limited: Callable[[], bool] | None = None,
    ) -> None:
        self.store = store
        self.read_models = read_models or ReadModels(store)
        # Whether this process may start a workflow run under its workflow's maxConcurrentRuns: the slots are
        # counted from the read models, so two deciders could each see a slot free; the dispatchers leave it to
        # their leader (as the gate does for definitions), whose upkeep looks at waiting runs every few seconds.
        self.may_start_limited = may_start_limited or (lambda: True)
        self._folds: dict[str, tuple[Doc | None, int, str]] = {}
        self._epoch = store.epoch  # the store the folds were read from

    def load(self, workflow_run: str) -> tuple[Doc | None, int]:
        """The workflow run's document and version, folding only the events after the cached ones.

        A cached fold is trusted only while the log agrees with it: new events must continue its version
        (a log restored to an earlier point, then written to, does not), else it is folded again from the start.
        """
        self._check_epoch()
        doc, version, last = self._folds.get(workflow_run, (None, 0, ""))
        new = self.store.load_after(workflow_run, last) if last else self.store.load(workflow_run)
        if last and new and new[0].version != version + 1:
            self._folds.pop(workflow_run, None)
            return self.load(workflow_run)
        for rec in new:
            doc = apply_workflow_run(doc, rec)
        if new:
            version, last = version + len(new), new[-1].position
            if doc is not None and doc["status"] in ("SUCCEEDED", "FAILED", "CANCELLED") and len(self._folds) > 1000:
                self._folds.pop(workflow_run, None)  # finished, and the cache is large: forget it
            else:
                self._folds[workflow_run] = (doc, version, last)
        return doc, version

    def verify(self, workflow_runs: Iterable[str]) -> None:
        """Drop the cached folds the log no longer agrees with, in one round trip for the lot.

        A fold ahead of its aggregate's version in the store saw events the log has lost (a restore to an
        earlier point, a power loss under ``appendfsync everysec``): it is folded again before anything is
        decided on it. A fold behind is only stale, and ``load`` reads what it has not seen.
        """
        self._check_epoch()
        cached = [w for w in workflow_runs if w in self._folds]
        if not cached:
            return
        for workflow_run, version in self.store.versions(cached).items():
            if self._folds[workflow_run][1] > version:
                self._folds.pop(workflow_run, None)

    def forget(self, workflow_run: str) -> None:
        """Drop one cached fold: the next ``load`` folds the workflow run's events from the start."""
        self._folds.pop(workflow_run, None)

    def _check_epoch(self) -> None:
        """Another store (another epoch) shares nothing with the folds cached from the old one: drop them all."""
        if self.store.epoch != self._epoch:
            self._folds.clear()
            self._epoch = self.store.epoch

    def load_runs(self, runs: Iterable[str]) -> dict[str, tuple[Doc, int]]:
        """Runs by id with their versions, in one round trip."""
        return load_states(self.store, runs, apply_run)

    def _satisfied(self, doc: Doc) -> dict[tuple[str, str], str]:
        pending = [r for r in doc["references"] if r["run"] is None]
        if not pending:
            return {}
        self.read_models.catch_up()
        found: dict[tuple[str, str], str] = {}
        for ref in pending:
            run = find_reference_run(self.read_models, ref["kind"], ref["name"], doc["logical_date"])
            if run is not None:
                found[(ref["kind"], ref["name"])] = run
        return found

    def _slot_reason(self, doc: Doc) -> str | None:
        """Why a workflow run under its workflow's ``maxConcurrentRuns`` may not start its tasks yet (None: it may).

        A workflow run holds a slot from its first task submitted until it ends; one not started yet waits
        while the runs holding slots and the runs started before it still waiting fill the limit, so they
        start in submission order. Counted from the read models caught up with the log.
        """
        if not _limited_and_unstarted(doc):
            return None
        limit = doc["max_concurrent_runs"]
        self.read_models.catch_up()
        ids = self.read_models.newest("workflow_runs", f"workflow:{doc['workflow']}", 0, SLOT_SCAN)
        ahead = 0
        for other in self.read_models.get_many("workflow_runs", ids):
            if other is None or other["id"] == doc["id"] or not is_going(other):
                continue
            started = other["status"] != PENDING or any(t["runs"] for t in other["tasks"].values())
            if started or other["order"] < doc["order"]:
                ahead += 1
        return SLOT_REASON.format(limit) if ahead >= limit else None

    def advance(self, workflow_run: str, ended: Mapping[str, tuple[Doc, int]] | None = None) -> int:
        """Record what happened to the workflow run and what it does next; returns the events appended.

        ``ended``: child runs the caller knows ended (run id -> doc, version); without it every
        running child is loaded, which is what upkeep does to heal a reaction that never happened.
        A caller advancing many workflow runs calls ``verify`` on them first, once for the lot.
        """
        for _ in range(ADVANCE_RETRIES):
            doc, version = self.load(workflow_run)
            if doc is None:
                return 0
            if _limited_and_unstarted(doc) and not self.may_start_limited():
                return 0  # the leading dispatcher starts it, or says why it waits
            held = self._slot_reason(doc)
            if held is not None:
                if doc["reason"] == held:
                    return 0
                try:
                    self.store.append(
                        [NewEvent(workflow_run, WorkflowRunWaiting(reason=held))], {workflow_run: version}
                    )
                except ConcurrencyError:
                    continue
                return 1
            active = [t["run"] for t in doc["tasks"].values() if is_active(t)]
            children = dict(ended) if ended is not None else self.load_runs(active)
            satisfied = self._satisfied(doc)
            decision = decide_advance(doc, children, satisfied, datetime.now(UTC))
            if decision.incomplete:
                children = self.load_runs(active)
                decision = decide_advance(doc, children, satisfied, datetime.now(UTC))
            if not decision.events and not decision.children:
                return 0
            batch = [NewEvent(workflow_run, e) for e in decision.events] + decision.children
            try:
                self.store.append(batch, {workflow_run: version, **decision.expected})
            except ConcurrencyError as exc:
                # Someone else moved it (or a child): decide again on fresh state. A workflow run found behind
                # the cached fold means the log lost what the fold saw: it is folded afresh from the log.
                if exc.aggregate == workflow_run and exc.actual < version:
                    self.forget(workflow_run)
                ended = None
                continue
            return len(batch)
        return 0


def _limited_and_unstarted(doc: Doc) -> bool:
    """A workflow run under its workflow's ``maxConcurrentRuns`` that has not started a task yet."""
    return (
        doc["max_concurrent_runs"] is not None
        and doc["status"] == PENDING
        and not any(t["runs"] for t in doc["tasks"].values())
    )
