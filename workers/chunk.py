"""An array job's consecutive children delivered as one RQ job: each still claimed, run and recorded on its own.

A child of an array job is a run like any other, but putting each on RQ made a short child pay RQ's
bookkeeping of a job (the pop, the job's hash and registries, its success) as often as its own process. The
dispatcher puts an array's children on RQ a chunk at a time (``scheduler.rq_jobs``); the worker that pops a
chunk looks at its children in one round trip, holds the lease of every child still to run (so the
reconciler sees them held), and delivers them one after the other exactly as ``run_attempt`` delivers one:
its own claim (``RunStarted``), attempt folder, sandbox, environment and outcome. A child cancelled or taken
meanwhile is not claimed, so runs nothing.

A chunk is for short children: once one of them has run for ``HAND_BACK_SECONDS``, or the chunk for
``CHUNK_SECONDS``, or when it is stopped, the children it has not started go back on the queue each as its own
attempt, for any worker (an array of long children runs as many at once as there are workers). If
its worker dies, the running child's lease expires (``WorkerLost``, then the retry strategy), and the
reconciler queues the others again once their leases have expired, each as its own attempt.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import redis
import structlog
from rq import get_current_job

from queue_core.domain.gate import priority_of
from queue_core.domain.runs import PENDING, apply_run
from queue_core.eventlog.aggregates import load_states
from scheduler.rq_jobs import enqueue_attempt
from workers.attempt import AttemptCrashed, deliver, worker_context, worker_name
from workers.chunk_sandbox import SHARED_TYPES, ChunkSandbox
from workers.lease_keeper import HeldLeases
from workers.outage import STORE_ERRORS, away_tolerant

__all__ = ["CHUNK_SECONDS", "HAND_BACK_SECONDS", "run_chunk"]

log = structlog.get_logger("jobledger.worker")
CHUNK_SECONDS = 5.0  # after this, a chunk's children not started yet go back on the queue one by one
HAND_BACK_SECONDS = 1.0  # so they do too once one child has run this long
WATCH_SECONDS = 0.1  # how often a chunk looks at how long its child has run


def run_chunk(run_ids: list[str], attempt: int) -> dict[str, Any]:
    """Deliver the attempts of ``run_ids`` one after the other; a child that cannot be claimed runs nothing."""
    ctx = worker_context()
    holder = worker_name()
    job = get_current_job()
    states = load_states(ctx.store, run_ids, apply_run)
    due = [r for r in run_ids if r in states and _claimable(states[r][0], attempt)]
    counts = ctx.leases.take_many([(r, attempt) for r in due], holder, ctx.settings.lease_seconds)
    deliveries = dict(zip(due, counts, strict=True))

    def renew(held: list[tuple[str, int]]) -> None:
        away_tolerant(lambda: ctx.leases.hold_many(held, holder, ctx.settings.lease_seconds), None, "lease renewal")()

    leases = HeldLeases(renew, [(r, attempt) for r in due], ctx.settings.lease_renew_seconds).start()
    shared = _shared_sandbox(ctx, [states[r][0]["job"] for r in due])
    ctx.spares.lender = shared
    rest = _Rest(due, attempt, states, leases, job.connection if job is not None else None)
    watch = threading.Thread(target=rest.watch, name="chunk-watch", daemon=True)
    watch.start()
    began = time.monotonic()
    delivered = 0
    ended: list[tuple[str, int]] = []  # the claimed children's leases: released together, once the chunk ends
    try:
        while (run_id := rest.next()) is not None:
            bound = log.bind(run_id=run_id, attempt=attempt)
            keeper = leases.one((run_id, attempt))
            try:
                if deliver(ctx, run_id, attempt, states[run_id], deliveries[run_id], keeper, bound, release=False)[
                    "claimed"
                ]:
                    ended.append((run_id, attempt))
            except AttemptCrashed:  # logged (masked) by the delivery; its siblings still run; its lease expires
                pass
            finally:
                leases.let_go((run_id, attempt))
            delivered += 1
            if time.monotonic() - began > CHUNK_SECONDS:
                rest.hand_back()
    finally:
        rest.hand_back()  # a stop or a crash: what has not started goes to other workers
        watch.join()
        leases.stop()
        away_tolerant(lambda: ctx.leases.release_many(ended), None, "lease release")()
        ctx.spares.lender = None
        if shared is not None:
            shared.close()
    return {"children": len(run_ids), "delivered": delivered, "handed_back": rest.handed_back}


def _shared_sandbox(ctx: Any, jobs: list[dict[str, Any]]) -> ChunkSandbox | None:
    """The sandbox the chunk's children share (see ``workers.chunk_sandbox``), if two or more may share one."""
    if len(jobs) < 2 or not ctx.sandbox.enabled or jobs[0]["type"] not in SHARED_TYPES:
        return None
    try:
        return ChunkSandbox(ctx.sandbox, ctx.settings.home / "runs", jobs[0].get("network"))
    except OSError as exc:  # each child then sets up its own
        log.warning("could not set up a chunk's sandbox", error=str(exc))
        return None


def _claimable(doc: dict[str, Any], attempt: int) -> bool:
    return bool(doc["status"] == PENDING and doc["attempt"] == attempt)


class _Rest:
    """The chunk's children not started yet: taken one by one, or all handed back (from any thread), once."""

    def __init__(
        self,
        run_ids: list[str],
        attempt: int,
        states: dict[str, tuple[dict[str, Any], int]],
        leases: HeldLeases,
        connection: redis.Redis | None,
    ) -> None:
        self._waiting = list(run_ids)
        self.attempt, self.states, self.leases, self.connection = attempt, states, leases, connection
        self._lock = threading.Lock()
        self._since = time.monotonic()  # when the child running now was taken
        self._done = threading.Event()
        self.handed_back = 0

    def next(self) -> str | None:
        with self._lock:
            self._since = time.monotonic()
            return self._waiting.pop(0) if self._waiting else None

    def watch(self) -> None:
        """Hand the rest back once a child has run ``HAND_BACK_SECONDS`` (a long one: its siblings go to other
        workers); returns when nothing is left to hand back."""
        while not self._done.wait(WATCH_SECONDS):
            if time.monotonic() - self._since > HAND_BACK_SECONDS:
                self.hand_back()

    def hand_back(self) -> None:
        """Put the children not started back on the queue, each as its own attempt for any worker. Their leases
        are let go, not released (another delivery of the same attempt may hold the same key by then); if the
        store is away, the reconciler queues them again once the leases have expired."""
        with self._lock:
            run_ids, self._waiting = self._waiting, []
            self._done.set()
            for run_id in run_ids:
                self.leases.let_go((run_id, self.attempt))
            if not run_ids or self.connection is None:
                return
            for run_id in run_ids:
                doc = self.states[run_id][0]
                try:
                    enqueue_attempt(self.connection, doc["cluster"], run_id, self.attempt, priority_of(doc["job"]))
                except STORE_ERRORS as exc:
                    log.warning("store unavailable; the reconciler queues the chunk's children again", error=str(exc))
                    return
                self.handed_back += 1
        log.info("array chunk handed back the children it had not started", children=len(run_ids))
