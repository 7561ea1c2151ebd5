"""Periodic upkeep by the one leading dispatcher: due retries, expired leases, attempts RQ lost, seals."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
import structlog

from queue_core.domain.gate import is_gated, priority_of
from queue_core.domain.runs import IN_QUEUE, RECENTLY_SUBMITTED, WAITING_TO_RETRY
from queue_core.errors import JobledgerError
from queue_core.eventlog.leases import Leases
from queue_core.eventlog.runlog import RunLog
from queue_core.eventlog.seals import load_signer
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import ReadModels
from queue_core.services.arrays import ArrayChildren
from queue_core.services.compaction import archive_location, compact_runs, trim_to_window
from queue_core.services.lifecycle import RunLifecycle
from queue_core.settings import Settings
from queue_core.timefmt import parse_utc
from scheduler.gate import Gate
from scheduler.rq_jobs import (
    POPPED,
    STARTED,
    enqueue_attempt,
    enqueue_first_attempts,
    forget_popped,
    scheduler_for,
    where_many,
)
from scheduler.sealing import Sealer

__all__ = ["Maintenance", "age_seconds"]

log = structlog.get_logger("jobledger.dispatcher")
LEADER_TTL_MS = 5000
RECONCILE_EVERY_SECONDS = 5.0
COMPACT_EVERY_SECONDS = 600.0  # how often the leader moves runs past the hot window to the cold tier
COMPACT_PER_PASS = 5000  # runs moved per pass, so that dispatching waits seconds at most; more: again soon
COMPACT_AGAIN_SECONDS = 10.0
PRERUN_SCRATCH_EVERY_SECONDS = 60.0  # how often the leader looks for pre-runs whose scratch has outlived retention


def age_seconds(stamp: str | None, now: datetime) -> float:
    """Seconds from an ISO time on the log to ``now``."""
    if not stamp:
        return 0.0
    return (now - parse_utc(stamp)).total_seconds()


class Maintenance:
    """Runs on every dispatcher, acts on the one holding the leader lock."""

    def __init__(self, settings: Settings, connection: redis.Redis, store: EventStore, name: str) -> None:
        self.settings = settings
        self.redis = connection
        self.store = store
        self.name = name
        self.read_models = ReadModels(store)
        self.lifecycle = RunLifecycle(store)
        self.arrays = ArrayChildren(store)
        self.leases = Leases(connection, store.keys)
        self.scheduler = scheduler_for(connection)
        self.gate = Gate(connection, store, self.read_models, self.still_leading)
        self._next_reconcile = 0.0
        self._next_compaction = time.monotonic() + COMPACT_EVERY_SECONDS
        self._next_scratch = 0.0
        self._client: Any = None
        self._stranded: set[tuple[str, int]] = set()  # attempts seen held for a gone worker at the last pass
        self._leaseless: set[tuple[str, int]] = set()  # running attempts seen without a lease at the last pass
        # Pending attempts (run, attempt, reason) and when this process first saw each so, on its monotonic clock.
        self._pending_since: dict[tuple[str, int, str], float] = {}
        self.on_reconcile: Callable[[], None] | None = None  # the dispatcher's workflow upkeep
        # Only a dispatcher that can read the ledger key seals (``jobledger scheduler`` creates it).
        self.signer = load_signer(settings)
        self.sealer = Sealer(store, self.signer) if self.signer is not None else None

    def _lead(self) -> bool:
        key = self.store.keys.dispatcher_leader
        if self.redis.set(key, self.name, nx=True, px=LEADER_TTL_MS):
            return True
        holder: Any = self.redis.get(key)
        if holder is not None and holder.decode() == self.name:
            self.redis.pexpire(key, LEADER_TTL_MS)
            return True
        return False

    def still_leading(self) -> bool:
        """Whether this dispatcher holds the leader's lease now (one GET; a lost lease is seen at once)."""
        holder: Any = self.redis.get(self.store.keys.dispatcher_leader)
        return holder is not None and holder.decode() == self.name

    def release(self) -> None:
        key = self.store.keys.dispatcher_leader
        holder: Any = self.redis.get(key)
        if holder is not None and holder.decode() == self.name:
            self.redis.delete(key)

    def tick(self) -> None:
        if not self._lead():
            return
        self.scheduler.enqueue_jobs()  # retries whose delay is over go onto their queues
        self.read_models.catch_up()
        self.gate.pass_()  # after the catch-up: the slots in use are those of the whole log
        now = datetime.now(UTC)
        self.reap_leases()
        if time.monotonic() >= self._next_reconcile:
            self._next_reconcile = time.monotonic() + RECONCILE_EVERY_SECONDS
            self.reconcile(now)
            if self.on_reconcile is not None:
                self.on_reconcile()
        if self.sealer is not None:
            self.sealer.tick()
        if time.monotonic() >= self._next_compaction:
            self._next_compaction = time.monotonic() + COMPACT_EVERY_SECONDS
            self.compact()
        if time.monotonic() >= self._next_scratch:
            self._next_scratch = time.monotonic() + PRERUN_SCRATCH_EVERY_SECONDS
            self.expire_prerun_scratch(now)

    def gate_now(self) -> None:
        """A gate pass between ticks, on the leader only: the read models caught up first, as on a tick."""
        if self.still_leading():
            self.read_models.catch_up()
            self.gate.pass_()

    def expire_prerun_scratch(self, now: datetime) -> None:
        """Remove the scratch outputs of pre-runs that ended more than the retention period ago."""
        from queue_core.client import Client  # here: the client's services, built once, only on the leader

        try:
            if self._client is None:
                self._client = Client(settings=self.settings, connection=self.redis)
            done = self._client.preruns.expire(now, self.settings.prerun_retention_hours * 3600)
        except JobledgerError as exc:
            log.error("pre-run scratch removal failed; trying again later", error=str(exc).splitlines()[0])
            return
        for entry in done:
            log.info(
                "pre-run scratch removed", workflow_run=entry["id"], depots=entry["removed"], failed=entry["failed"]
            )

    def compact(self) -> None:
        """Move the runs past the hot window to the cold tier; a failure is said and tried again later."""
        try:
            folder = self.store.cold.folder() or self.settings.cold_path
            window, keep = self.settings.hot_window_delta, self.settings.hot_runs_cap
            run_log = RunLog(self.redis, self.store.keys)
            done = compact_runs(self.store, self.read_models, run_log, folder, window, keep, limit=COMPACT_PER_PASS)
            location = archive_location(self.store, self.settings)
            trimmed = trim_to_window(self.store, self.read_models, location, window, self.signer)
        except (JobledgerError, OSError) as exc:
            log.error("compaction failed; trying again later", error=str(exc).splitlines()[0])
            return
        if done.runs or trimmed:
            log.info("compacted", runs=done.runs, events=done.events, lines=done.lines, trimmed=trimmed)
        if done.runs == COMPACT_PER_PASS:
            self._next_compaction = time.monotonic() + COMPACT_AGAIN_SECONDS

    def _docs(self, index: str) -> list[dict[str, Any]]:
        ids = self.read_models.newest("runs", index, 0, 100_000)
        return [d for d in self.read_models.get_many("runs", ids) if d]

    def reap_leases(self) -> None:
        """A running attempt whose lease has expired is ``WorkerLost``, then retried or failed.

        Only the lease says whether the attempt's worker lives: it expires by the store's clock, set as a
        duration by the worker. The attempt's start, stamped by the worker's clock, is never compared with
        this machine's (a worker an hour ahead that died kept its run RUNNING for an hour). A lease seen gone
        at two passes in a row is expired, not a claim racing this look at it.
        """
        # An array job's parent runs no attempt of its own: its children hold the leases.
        running = [(doc["id"], doc["attempt"]) for doc in self._docs("status:RUNNING") if doc["array"] is None]
        alive = self.leases.alive_many(running)
        gone = {attempt for attempt, held in zip(running, alive, strict=True) if not held}
        for run_id, attempt in gone & self._leaseless:
            if self.lifecycle.declare_lost(run_id, attempt, "the worker stopped renewing its lease"):
                log.warning("worker lost", run_id=run_id, attempt=attempt)
        self._leaseless = gone

    def reconcile(self, now: datetime) -> None:
        """Re-enqueue, under the same job id, attempts the log says are pending but RQ no longer holds, or
        holds for a worker that is gone: popped but never started, or started by a worker that never
        claimed the attempt and holds no lease on it (it died between its pop and its claim)."""
        grace = self.settings.reconcile_after_seconds
        stranded: set[tuple[str, int]] = set()
        seen: dict[tuple[str, int, str], float] = {}
        pending = self._docs("status:PENDING")
        # Where RQ holds each attempt that could be lost, looked up together (an array job queues thousands).
        places = where_many(
            self.redis,
            [(d["cluster"], d["id"], d["attempt"]) for d in pending if d["reason"] in (IN_QUEUE, WAITING_TO_RETRY)],
        )
        for doc in pending:
            run_id, attempt, reason = doc["id"], doc["attempt"], doc["reason"]
            # How long the run has waited in this state: by the times on the log (stamped by whichever machine
            # wrote them), and at least as long as this process has itself seen it wait, on its own clock, so
            # a writer whose clock runs ahead cannot hold the run back.
            state = (run_id, attempt, reason)
            first = seen[state] = self._pending_since.get(state, time.monotonic())
            waited = time.monotonic() - first
            if reason == RECENTLY_SUBMITTED and is_gated(doc["job"]):
                continue  # the gate's to let through, on every tick
            if doc["array"] is not None:  # an array job's parent: expanded (again), never put on RQ itself
                if reason == RECENTLY_SUBMITTED and max(age_seconds(doc["updated_at"], now), waited) > grace:
                    children = self.arrays.expand(run_id)
                    if children:
                        enqueue_first_attempts(self.redis, doc["cluster"], children, priority_of(doc["job"]))
                        log.warning("expanded an array job no dispatcher had taken", run_id=run_id)
                continue
            if reason == RECENTLY_SUBMITTED and max(age_seconds(doc["updated_at"], now), waited) > grace:
                if self.lifecycle.queue(run_id, attempt):
                    enqueue_attempt(self.redis, doc["cluster"], run_id, attempt, priority_of(doc["job"]))
                    log.warning("dispatched a run no dispatcher had taken", run_id=run_id)
            elif reason in (IN_QUEUE, WAITING_TO_RETRY):
                since = doc["updated_at"] if reason == IN_QUEUE else doc["not_before"]
                if reason == WAITING_TO_RETRY:  # past due, not since decided: never retried before its delay
                    waited -= max(0.0, age_seconds(doc["updated_at"], parse_utc(doc["not_before"])))
                if max(age_seconds(since, now), waited) <= grace:
                    continue
                place = places[(run_id, attempt)]
                if place in (POPPED, STARTED, None) and self.leases.alive(run_id, attempt):
                    continue  # a worker holds it (its source is being fetched, say): not lost, only slow
                if place in (POPPED, STARTED):
                    # A worker is between its pop and its claim, or died there. Still so a whole reconcile
                    # period later, it died: take the attempt back and queue it again. Were it only slow,
                    # its claim and the new delivery's race, and the loser runs nothing.
                    key = (run_id, attempt)
                    stranded.add(key)
                    if key not in self._stranded:
                        continue
                    if place == POPPED:
                        forget_popped(self.redis, doc["cluster"], run_id, attempt)
                    place = None
                if place is None:
                    enqueue_attempt(self.redis, doc["cluster"], run_id, attempt, priority_of(doc["job"]))
                    log.warning("re-enqueued an attempt RQ lost", run_id=run_id, attempt=attempt, reason=reason)
        self._stranded = stranded
        self._pending_since = seen
