"""The scheduler's follow-ups beside the clock: data-aware triggers, backfills releasing their next ticks, and
schedules pausing themselves when a run they fired fails. One loop: a pass of each every ``POLL_SECONDS``, and
between them the dataset triggers as soon as the log moves (a blocking read of it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

import redis
import structlog

from queue_core.client import Client
from queue_core.domain.schedules import ACTIVE
from queue_core.errors import StoreUnavailable
from queue_core.eventlog.positions import position_key
from queue_core.readmodels.projections import PAUSE_ON_FAILURE
from scheduler.triggers import FILE_POLL_SECONDS, TriggerWatcher, utc_now

__all__ = ["FollowUps"]

log = structlog.get_logger("jobledger.follow_ups")
POLL_SECONDS = 0.2
# After a wake-up on the log, the least time before the next: a busy log (every run's events land in it)
# wakes the loop at most this often, not once per event.
WAKE_GAP_SECONDS = 0.02
_FAILURES = frozenset({"RunFailed", "WorkflowRunFinished"})


class FollowUps:
    """Triggers, backfills and pause-on-failure; any number may run against one store (each append is
    decided at the version it read, with ids derived from what it records)."""

    def __init__(
        self, client: Client, clock: Callable[[], datetime] = utc_now, file_poll_seconds: float = FILE_POLL_SECONDS
    ) -> None:
        self.client = client
        self.triggers = TriggerWatcher(client, clock, file_poll_seconds)
        self._failures_from: str | None = None
        self._stop = threading.Event()

    def stop(self, *_: object) -> None:
        self._stop.set()

    def run_pass(self, now: datetime | None = None) -> int:
        """One pass of each follow-up; returns how many decisions were appended."""
        appended = self.triggers.run_pass(now)
        appended += self.backfills_pass()
        appended += self.failures_pass()
        return appended

    def backfills_pass(self) -> int:
        """Release the next ticks of each running backfill whose runs have room, or record that it finished."""
        return sum(self.client.backfills.advance(doc["id"]) for doc in self.client.backfills.running())

    def failures_pass(self) -> int:
        """Pause each ``pause_on_failure`` schedule whose last fired run has failed since the last look."""
        store = self.client.store
        head = store.last_position()
        if self._failures_from is None:
            self._failures_from = head  # a run that failed before this scheduler started paused it then
            return 0
        if head == "0" or position_key(head) <= position_key(self._failures_from):
            return 0
        failed = set()
        for rec in store.read(after=self._failures_from, until=head, types=_FAILURES):
            if rec.type == "RunFailed" or getattr(rec.event, "status", None) == "FAILED":
                failed.add(rec.aggregate)
        self._failures_from = head
        if not failed:
            return 0
        read_models = self.client.read_models
        read_models.catch_up()
        # Only the active schedules that pause on failure (an index of the read model), not every schedule.
        watching = [entity for entity, _ in read_models.scored("schedules", PAUSE_ON_FAILURE)]
        paused = 0
        for doc in read_models.get_many("schedules", watching):
            last = doc["last_run"] if doc else None
            if doc and doc["status"] == ACTIVE and last and last["id"] in failed:
                paused += self.client.schedules.pause_for_failure(doc["id"], last["id"])
        return paused

    def follow_until(self, deadline: float) -> int:
        """Until ``deadline`` (monotonic), wait on the log and run the triggers each time it moves: a write
        fires its trigger in milliseconds rather than at the next pass. Returns the decisions appended."""
        appended = 0
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if self.client.store.follow(self.triggers.followed, block_ms=max(1, int(left * 1000)), count=1):
                appended += self.triggers.run_pass()
                self._stop.wait(WAKE_GAP_SECONDS)
        return appended

    def run(self) -> None:
        """A pass every ``POLL_SECONDS``, the triggers also on each move of the log, until stopped."""
        log.info("follow-ups started")
        while not self._stop.is_set():
            try:
                self.run_pass()
                self.follow_until(time.monotonic() + POLL_SECONDS)
            except (redis.ConnectionError, redis.TimeoutError, StoreUnavailable) as exc:
                log.warning("store unavailable; retrying", error=str(exc))
                self._stop.wait(1.0)
            except Exception:
                log.exception("follow-up pass failed; retrying")
                self._stop.wait(1.0)
        log.info("follow-ups stopped")
