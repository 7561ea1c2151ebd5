"""The fleet's RQ worker class: no work-horse fork (the job already runs in a child), JSON entry jobs only."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import redis
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.worker import SimpleWorker

from queue_core.errors import JobledgerError, StoreUnderMaintenance
from queue_core.eventlog.connection import connect_like
from queue_core.eventlog.health import check_store
from queue_core.eventlog.store import EventStore
from queue_core.settings import Settings
from workers.leftovers import kill_leftovers
from workers.outage import STORE_ERRORS, wait_for_store
from workers.preflight import preflight
from workers.rq_job import FleetJob, refusal
from workers.sandbox import SandboxUnavailable
from workers.serializer import JobSerializer

__all__ = ["AttemptWorker"]

# How often the worker's pubsub listener (RQ's commands: stop a job, shut down) wakes to see it was stopped.
# RQ waits 60 s; under redis-py 8, closing the pubsub at exit waits for that read, so a burst worker on an
# empty queue could take a minute to exit.
PUBSUB_WAKE_SECONDS = 0.5
MAINTENANCE_POLL_SECONDS = 1.0


class AttemptWorker(SimpleWorker):
    """``rq worker -w workers.worker.AttemptWorker``: always uses jobledger's refusing serializer.

    An attempt already runs its job in a supervised child process group, so forking a
    work-horse per job as RQ's default worker does would only cost a second fork. A payload
    the serializer refuses fails in RQ's own failure path (FailedJobRegistry) without running.
    Job descriptions are not logged: a hostile job's description is whatever its author wrote.

    It runs only ``run_attempt`` (see ``workers.rq_job``): a job hash naming anything else, callbacks,
    dependencies or webhooks is refused, logged once, and failed with nothing of it imported or called.

    Before it takes any job it decides the sandbox jobs get (see ``workers.preflight``: it refuses to start
    rather than run jobs unsandboxed against an external store), and checks the store (see
    ``queue_core.eventlog.health``). It rides out a store
    outage: where RQ's worker would quit on a lost connection, this one waits for the store to come
    back and goes on. What RQ failed to record meanwhile, the log and the dispatcher's upkeep put right.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["serializer"] = JobSerializer
        kwargs["job_class"] = FleetJob
        kwargs["log_job_description"] = False
        super().__init__(*args, **kwargs)
        # ``rq worker`` builds the queues before the worker, with RQ's job class: their registries' upkeep
        # (an abandoned job's failure callback) would import what a job hash names.
        for queue in self.queues:
            queue.job_class = FleetJob
        self._probe: redis.Redis = self.connection

    def work(self, *args: Any, **kwargs: Any) -> bool:
        settings = Settings.from_env()
        try:
            _, notes = preflight(settings)
        except SandboxUnavailable as exc:
            print(f"jobledger worker: {exc}", file=sys.stderr)
            raise SystemExit(exc.exit_code) from None
        for note in notes:
            print(f"jobledger worker: {note}", file=sys.stderr, flush=True)
        # A connection with jobledger's short time-out, to check the store and to see it come back.
        self._probe = connect_like(self.connection, settings)
        said = False
        while True:  # SIGTERM's default action ends this wait: RQ's handlers are installed after it
            try:
                check_store(EventStore(self._probe), settings, head=True)
                break
            except StoreUnderMaintenance as exc:  # an import or a restore: it ends, and the store is whole again
                if not said:
                    print(f"jobledger worker: {exc}; waiting for it to end", file=sys.stderr, flush=True)
                    said = True
                time.sleep(MAINTENANCE_POLL_SECONDS)
            except JobledgerError as exc:
                print(f"jobledger worker: {exc}", file=sys.stderr)
                raise SystemExit(exc.exit_code) from None
        for session in kill_leftovers(settings.home / "runs"):
            self.log.warning(
                "Worker %s: killed what was left of an attempt of a dead worker (session %s)", self.name, session
            )
        return bool(super().work(*args, **kwargs))

    def perform_job(self, job: Job, queue: Queue) -> bool:
        reason = refusal(job)
        if reason is None:
            return bool(super().perform_job(job, queue))
        self.log.warning("Worker %s: refused RQ job %s: %s; nothing of it was run", self.name, job.id, reason)
        # RQ's own failure path, without what it would run for the job: no callback, webhook nor dependents.
        with self.connection.pipeline() as pipeline:
            pipeline.lrem(queue.intermediate_queue_key, 1, job.id)
            job.set_status(JobStatus.FAILED, pipeline=pipeline)
            self.cleanup_execution(job, pipeline=pipeline)
            job._handle_failure(f"refused: {reason}", pipeline=pipeline, worker_name=self.name)
            self.increment_failed_job_count(pipeline)
            pipeline.execute()
        return False

    def subscribe(self) -> None:
        """RQ's subscription to the worker's command channel, with a listener that wakes twice a second."""
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        listener: Any = self.pubsub.run_in_thread(
            sleep_time=PUBSUB_WAKE_SECONDS, daemon=True, exception_handler=self._pubsub_exception_handler
        )
        self.pubsub_thread = listener

    def _wait_for_store(self, during: str, exc: BaseException) -> None:
        self.log.warning("Worker %s: store unavailable during %s (%s); waiting for it", self.name, during, exc)
        wait_for_store(self._probe, lambda: bool(self._stop_requested))

    def dequeue_job_and_maintain_ttl(self, *args: Any, **kwargs: Any) -> Any:
        while True:
            try:
                return super().dequeue_job_and_maintain_ttl(*args, **kwargs)
            except redis.TimeoutError as exc:  # RQ waits out lost connections here, but quits on a hung store
                self._wait_for_store("dequeue", exc)
                if self._stop_requested:
                    return None

    def _riding_out(self, during: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``call``; if the store is away, wait for it (or for a stop) and go on with the loop."""
        try:
            return call(*args, **kwargs)
        except STORE_ERRORS as exc:
            self._wait_for_store(during, exc)
            return None

    def execute_job(self, *args: Any, **kwargs: Any) -> Any:
        return self._riding_out("the job's bookkeeping", super().execute_job, *args, **kwargs)

    def check_for_suspension(self, *args: Any, **kwargs: Any) -> Any:
        return self._riding_out("the suspension check", super().check_for_suspension, *args, **kwargs)

    def run_maintenance_tasks(self, *args: Any, **kwargs: Any) -> Any:
        return self._riding_out("maintenance", super().run_maintenance_tasks, *args, **kwargs)

    def heartbeat(self, *args: Any, **kwargs: Any) -> Any:
        return self._riding_out("the heartbeat", super().heartbeat, *args, **kwargs)
