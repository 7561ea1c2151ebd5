"""The dispatcher's part in workflows: after each batch of log entries, advance the workflow runs it touched."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
import structlog

from queue_core.eventlog.events import Recorded
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import ReadModels
from queue_core.services.workflow_runs import WorkflowEngine

__all__ = ["WorkflowReactions"]

log = structlog.get_logger("jobledger.dispatcher")
_RUN_ENDS = frozenset({"RunSucceeded", "RunFailed", "RunCancelled"})
_WORKFLOW_MOVES = frozenset({"WorkflowRunStarted", "TaskRerunRequested", "WorkflowRunCancelled"})
WAITING_SCAN = 1000
SLOT_WAIT = "Waiting for a slot"


class WorkflowReactions:
    """Collects what a batch of events means for workflow runs, then advances each touched run once."""

    def __init__(
        self,
        store: EventStore,
        read_models: ReadModels | None = None,
        may_start_limited: Callable[[], bool] | None = None,
    ) -> None:
        self.engine = WorkflowEngine(store, read_models, may_start_limited)
        self.read_models = self.engine.read_models
        self._full: set[str] = set()
        self._ended: set[str] = set()
        self._references = False
        self._slots_freed = False  # a workflow run ended: runs waiting for a slot may start
        self._poisoned: set[str] = set()  # workflow runs already said to be left alone

    def note(self, rec: Recorded) -> None:
        if rec.type in _RUN_ENDS:
            self._ended.add(rec.aggregate)
            self._references |= rec.type == "RunSucceeded"
        elif rec.type in _WORKFLOW_MOVES:
            self._full.add(rec.aggregate)
            self._slots_freed |= rec.type == "WorkflowRunCancelled"
        elif rec.type == "WorkflowRunFinished":
            self._slots_freed = True
            self._references |= rec.event.status == "SUCCEEDED"  # type: ignore[attr-defined]

    def flush(self) -> None:
        """Advance every workflow run the noted events touched; idempotent, so a redelivery is harmless."""
        full, ended, references, freed = self._full, self._ended, self._references, self._slots_freed
        self._full, self._ended, self._references, self._slots_freed = set(), set(), False, False
        hints: dict[str, dict[str, tuple[dict[str, Any], int]]] = {}
        if ended:
            for run_id, (doc, version) in self.engine.load_runs(ended).items():
                if doc.get("workflow_run"):
                    hints.setdefault(doc["workflow_run"], {})[run_id] = (doc, version)
        touched = sorted(full | hints.keys())
        self.engine.verify(touched)  # one round trip: no decision on a fold the log no longer agrees with
        for workflow_run in touched:
            self._advance(workflow_run, None if workflow_run in full else hints[workflow_run])
        if references:
            self.advance_waiting()
        if freed:
            self.advance_waiting_for_slots()

    def advance_waiting_for_slots(self) -> None:
        """Look again at workflow runs waiting for a slot under their workflow's ``maxConcurrentRuns``, oldest
        first: a workflow run ended, and its slot may be theirs."""
        self.read_models.catch_up()
        ids = self.read_models.newest("workflow_runs", "status:PENDING", 0, WAITING_SCAN)
        docs = [
            d
            for d in self.read_models.get_many("workflow_runs", ids)
            if d and (d["reason"] or "").startswith(SLOT_WAIT)
        ]
        waiting = [d["id"] for d in sorted(docs, key=lambda d: d["order"])]
        self.engine.verify(waiting)
        for workflow_run in waiting:
            self._advance(workflow_run)

    def advance_waiting(self) -> None:
        """Look again at workflow runs waiting for a reference: a run they wait for may have succeeded.

        The index is read as the last catch-up left it (the leader's upkeep catches up twice a second):
        catching up here, on every batch with a success, would rewrite every busy workflow run's
        document each time. A run started since is advanced by its own start, and upkeep heals the rest.
        """
        ids = self.read_models.newest("workflow_runs", "status:PENDING", 0, WAITING_SCAN)
        if not ids:
            return
        waiting = [d["id"] for d in self.read_models.get_many("workflow_runs", ids) if d and _waits(d)]
        self.engine.verify(waiting)
        for workflow_run in waiting:
            self._advance(workflow_run)

    def upkeep(self) -> None:
        """Advance every workflow run still active: heals a reaction a killed dispatcher never made."""
        self.read_models.catch_up()
        active = self.read_models.newest("workflow_runs", "active", 0, 100_000)
        self.engine.verify(active)
        for workflow_run in active:
            if self._advance(workflow_run):
                log.warning("advanced a workflow run no dispatcher had moved", workflow_run=workflow_run)

    def _advance(self, workflow_run: str, ended: dict[str, tuple[dict[str, Any], int]] | None = None) -> int:
        """``engine.advance``, except that a workflow run whose decision raises is left alone (said once)."""
        try:
            return self.engine.advance(workflow_run, ended)
        except (redis.ConnectionError, redis.TimeoutError):
            raise
        except Exception as exc:
            if workflow_run not in self._poisoned:
                self._poisoned.add(workflow_run)
                log.error(
                    "workflow run left alone: advancing it raised", workflow_run=workflow_run, error=f"{exc!r}"[:300]
                )
            return 0


def _waits(doc: dict[str, Any]) -> bool:
    return any(ref["run"] is None for ref in doc["references"])
