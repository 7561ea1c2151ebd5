"""The gate: the leading dispatcher lets gated runs (a concurrency limit, a pool) onto their queues as slots
free, from the runs and pools folded to the head of the log, and records why the others wait."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
import structlog

from queue_core.domain.gate import decide_gate, holds_slots, is_waiting, priority_of
from queue_core.domain.runs import PENDING, apply_run
from queue_core.errors import ConcurrencyError
from queue_core.eventlog.aggregates import load_states
from queue_core.eventlog.events import NewEvent, RunQueued, RunWaiting
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import ReadModels
from queue_core.services.lifecycle import RunLifecycle, attempt_job_id
from queue_core.services.pools import gated_runs
from scheduler.rq_jobs import enqueue_attempt

__all__ = ["Gate"]

log = structlog.get_logger("jobledger.dispatcher")
ADMIT_BATCH = 200  # runs let through with one read and one append


class Gate:
    """Decides on the leader only, after the read models caught up with the log: every run it let through
    before is folded in, so the slots in use are exact, and no other dispatcher lets runs through meanwhile.

    Each decision is appended with the run's expected version: a run cancelled (or moved on) since it was
    read is left alone. Nothing is counted in memory: a new leader, or this one after a restart, derives the
    slots in use from the log again.
    """

    def __init__(
        self, connection: redis.Redis, store: EventStore, read_models: ReadModels, leading: Callable[[], bool]
    ) -> None:
        self.redis = connection
        self.store = store
        self.read_models = read_models
        self.lifecycle = RunLifecycle(store)
        self.leading = leading  # asked again before each run let through: a leader that lost its lease stops
        self.waiting = False  # whether the last pass left runs waiting (a run's end may then free their slots)

    def pass_(self) -> int:
        """Let through what fits now; returns how many runs were let through."""
        runs = gated_runs(self.read_models)
        waiting = [d for d in runs if is_waiting(d)]
        self.waiting = bool(waiting)
        if not waiting:
            return 0
        pools = {d["name"]: d["slots"] for d in self.read_models.all("pools").values() if d}
        decision = decide_gate(waiting, [d for d in runs if holds_slots(d)], pools)
        self.waiting = bool(decision.wait)
        by_id = {d["id"]: d for d in waiting}
        admitted = 0
        for start in range(0, len(decision.admit), ADMIT_BATCH):
            if not self.leading():
                return admitted
            admitted += self._let_through([by_id[run_id] for run_id in decision.admit[start : start + ADMIT_BATCH]])
        for run_id, reason in decision.wait.items():
            if by_id[run_id]["reason"] != reason:
                self._say_waiting(by_id[run_id], reason)
        return admitted

    def _let_through(self, seen: list[dict[str, Any]]) -> int:
        """Queue the runs ``seen`` waiting, as they are now: one read and one append for them all (one each
        if any moved meanwhile), in the order decided; returns how many were let through."""
        loaded = load_states(self.store, [d["id"] for d in seen], apply_run)
        batch: list[NewEvent] = []
        expected: dict[str, int] = {}
        docs = []
        for d in seen:
            doc, version = loaded.get(d["id"], (None, 0))
            if (
                doc is None
                or doc["status"] != PENDING
                or doc["reason"] != d["reason"]
                or doc["attempt"] != d["attempt"]
            ):
                continue  # cancelled, or moved on, since the read models said so
            queued = RunQueued(attempt=doc["attempt"], job_id=attempt_job_id(doc["id"], doc["attempt"]))
            batch.append(NewEvent(doc["id"], queued))
            expected[doc["id"]] = version
            docs.append(doc)
        if not batch:
            return 0
        try:
            self.store.append(batch, expected)
        except ConcurrencyError:  # one moved between the read and the append: each on its own
            return sum(self._let_through([d]) for d in seen) if len(seen) > 1 else 0
        with self.redis.pipeline(transaction=False) as pipe:  # one round trip to RQ for them all
            for doc in docs:
                enqueue_attempt(self.redis, doc["cluster"], doc["id"], doc["attempt"], priority_of(doc["job"]), pipe)
            pipe.execute()
        log.debug("runs let through the gate", runs=len(docs))
        return len(docs)

    def _say_waiting(self, seen: dict[str, Any], reason: str) -> None:
        doc, version = self.lifecycle.load(seen["id"])
        if doc is None or not is_waiting(doc) or doc["reason"] == reason:
            return
        try:
            waiting = RunWaiting(attempt=doc["attempt"], reason=reason)
            self.store.append([NewEvent(seen["id"], waiting)], {seen["id"]: version})
        except ConcurrencyError:
            pass  # it moved meanwhile: the next pass looks again
