"""The timer: each schedule's wake-up in rq-scheduler's registry, and passes that fire due ticks through the log.

The log is the truth; the registry is a derived copy. Each live schedule has one rq-scheduler job
(``jobledger-schedule-<id>``) scored at its next tick. ``reconcile`` (on start, then every
``RECONCILE_SECONDS``) makes the registry match the schedules projection: it adds what is missing
and removes what was paused, ended or deleted, so deleting every registry key and restarting brings
every timer back. Between reconciles the timer follows the log for schedules created, paused,
resumed or deleted. A pass takes the wake-ups that are due, has ``ScheduleService.advance`` decide
and append each schedule's due ticks (once per tick, whatever other timers run: the log's version
check and ids derived from the tick see to that), then scores the wake-up at the next tick.
No timer job is ever put on a queue: the registry is the wake-up source, the projection says what is due.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis
import structlog
from rq.job import Job
from rq_scheduler import Scheduler

from queue_core.client import Client
from queue_core.domain.schedules import ACTIVE, fire_time, instant, timing_of
from queue_core.errors import StoreUnavailable
from queue_core.keys import Keys

__all__ = ["Timer", "TimerJob", "TimerRegistry", "timer_job_id"]

STORE_ERRORS = (redis.ConnectionError, redis.TimeoutError, StoreUnavailable)
log = structlog.get_logger("jobledger.timer")
TIMER_FUNCTION = "scheduler.timer.wake"  # the registry job's callable: a label, no worker runs it
TIMER_QUEUE = "jobledger-timer"
JOB_PREFIX = "jobledger-schedule-"
POLL_SECONDS = 0.2  # how often the log is followed for new or changed schedules
RECONCILE_SECONDS = 30.0
RECONCILE_BATCH = 1000  # registry writes per round trip
QUEUE_RECHECK_SECONDS = 1.0  # how often a schedule with a queued tick looks at its previous run
# The events that arm or disarm a schedule's wake-up between reconciles.
LIFECYCLE = frozenset({"ScheduleCreated", "SchedulePaused", "ScheduleResumed", "ScheduleDeleted", "ScheduleEnded"})
_KEYS = Keys()


def timer_job_id(schedule_id: str) -> str:
    return f"{JOB_PREFIX}{schedule_id}"


def utc_now() -> datetime:
    return datetime.now(UTC)


class TimerSerializer:
    """JSON, and only the timer's own job data: a registry entry is never a way to run code."""

    @staticmethod
    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

    @staticmethod
    def loads(data: bytes) -> Any:
        value = orjson.loads(data)
        if isinstance(value, list) and (len(value) != 4 or value[0] != TIMER_FUNCTION):
            raise ValueError("refused timer job data: not a jobledger schedule wake-up")
        return value


class TimerJob(Job):
    """An rq-scheduler job standing for one schedule's wake-up."""

    def __init__(self, id: str | None = None, connection: redis.Redis | None = None, serializer: Any = None) -> None:
        super().__init__(id=id, connection=connection, serializer=serializer or TimerSerializer)


class TimerRegistry(Scheduler):
    """rq-scheduler under jobledger's keys: one job per live schedule, scored at its next wake-up."""

    scheduled_jobs_key = _KEYS.timer_scheduled
    scheduler_lock_key = _KEYS.timer_lock
    redis_scheduler_namespace_prefix = _KEYS.timer_instances
    job_class = TimerJob

    def arm(self, schedule_id: str, when: datetime) -> None:
        """Score the schedule's wake-up at ``when``, creating its job if the registry lacks it."""
        job_id = timer_job_id(schedule_id)
        if self.connection.exists(TimerJob.key_for(job_id)):
            self.connection.zadd(self.scheduled_jobs_key, {job_id: when.timestamp()})
            return
        self.enqueue_at(
            when,
            TIMER_FUNCTION,
            schedule_id,
            job_id=job_id,
            queue_name=TIMER_QUEUE,
            job_description=f"jobledger schedule {schedule_id} wake-up",
        )
        self.connection.zadd(self.scheduled_jobs_key, {job_id: when.timestamp()})  # to the microsecond

    def arm_many(self, wakes: dict[str, datetime | None], create: bool = False) -> None:
        """Score (None: remove) many wake-ups in one round trip; ``create`` also writes their jobs."""
        pipe = self.connection.pipeline(transaction=False)
        for schedule_id, when in wakes.items():
            job_id = timer_job_id(schedule_id)
            if when is None:
                pipe.zrem(self.scheduled_jobs_key, job_id)
                pipe.delete(TimerJob.key_for(job_id))
                continue
            if create:
                # What enqueue_at does, with the job's save in this pipeline.
                job = self._create_job(
                    TIMER_FUNCTION,
                    args=(schedule_id,),
                    id=job_id,
                    queue_name=TIMER_QUEUE,
                    description=f"jobledger schedule {schedule_id} wake-up",
                    commit=False,
                )
                job.save(pipeline=pipe)
            pipe.zadd(self.scheduled_jobs_key, {job_id: when.timestamp()})
        pipe.execute()

    def disarm(self, schedule_id: str) -> None:
        job_id = timer_job_id(schedule_id)
        self.cancel(job_id)
        self.connection.delete(TimerJob.key_for(job_id))

    def due(self, now: datetime) -> list[str]:
        """The schedule ids whose wake-up is at or before ``now``, soonest first."""
        ids: Any = self.connection.zrangebyscore(self.scheduled_jobs_key, "-inf", now.timestamp())
        return [i.decode().removeprefix(JOB_PREFIX) for i in ids]

    def entries(self) -> dict[str, float]:
        """Every wake-up: schedule id -> score."""
        found: Any = self.connection.zrange(self.scheduled_jobs_key, 0, -1, withscores=True)
        return {i.decode().removeprefix(JOB_PREFIX): score for i, score in found}

    def soonest(self) -> float | None:
        head: Any = self.connection.zrange(self.scheduled_jobs_key, 0, 0, withscores=True)
        return float(head[0][1]) if head else None


class Timer:
    """Fires schedules' ticks; any number may run against one store. ``clock`` is injected for tests."""

    def __init__(self, client: Client, clock: Callable[[], datetime] = utc_now) -> None:
        self.client = client
        self.service = client.schedules  # one service for the timer's life: it caches per pass
        self.read_models = client.read_models
        self.registry = TimerRegistry(connection=client.redis, interval=1)
        self.clock = clock
        self._followed = "0"  # the log position up to which schedule changes were looked at
        self._stop = threading.Event()
        self._poisoned: set[str] = set()  # schedules already said to be left alone, said once each

    def stop(self, *_: object) -> None:
        self._stop.set()

    # -- the registry ------------------------------------------------------------------------

    def wake_at(self, doc: dict[str, Any], now: datetime, recheck: float = 0.0) -> datetime | None:
        """When the pass should look at the schedule: its next tick; now (plus ``recheck``) when it has a
        queued tick or is due to end; None when it is not active."""
        if doc["status"] != ACTIVE:
            return None
        if doc["queued"]:
            return now + timedelta(seconds=recheck)
        following = timing_of(doc).next_after(instant(doc["cursor"]))
        if following is None or (doc.get("end") and following > instant(doc["end"])):
            return now  # a pass records that it ended
        return fire_time(doc, following)

    def _arm(self, schedule_id: str, doc: dict[str, Any] | None, now: datetime, recheck: float = 0.0) -> None:
        when = self.wake_at(doc, now, recheck) if doc else None
        if when is None:
            self.registry.disarm(schedule_id)
        else:
            self.registry.arm(schedule_id, when)

    def reconcile(self, now: datetime | None = None) -> int:
        """Make the registry match the schedules projection; returns how many wake-ups were added or changed."""
        now = now or self.clock()
        checkpoint = self.read_models.catch_up()
        docs = self.read_models.all("schedules")
        present = self.registry.entries()
        pipe = self.client.redis.pipeline(transaction=False)
        for schedule_id in docs:
            pipe.exists(TimerJob.key_for(timer_job_id(schedule_id)))
        has_job = dict(zip(docs, pipe.execute(), strict=True))
        missing: dict[str, datetime | None] = {}
        moved: dict[str, datetime | None] = {}
        for schedule_id, doc in docs.items():
            when = self.wake_at(doc, now)
            if when is None:
                if schedule_id in present or has_job[schedule_id]:
                    moved[schedule_id] = None
            elif not has_job[schedule_id]:
                missing[schedule_id] = when
            elif schedule_id not in present or abs(present[schedule_id] - when.timestamp()) > 1e-3:
                moved[schedule_id] = when
        moved.update(dict.fromkeys(present.keys() - docs.keys()))
        ids = list(missing)
        for start in range(0, len(ids), RECONCILE_BATCH):
            self.registry.arm_many({i: missing[i] for i in ids[start : start + RECONCILE_BATCH]}, create=True)
        ids = list(moved)
        for start in range(0, len(ids), RECONCILE_BATCH):
            self.registry.arm_many({i: moved[i] for i in ids[start : start + RECONCILE_BATCH]})
        self._followed = checkpoint or "0"
        return len(missing) + len(moved)

    def follow(self, now: datetime) -> None:
        """Arm or disarm the schedules created, paused, resumed, ended or deleted since the last look."""
        until = self.read_models.catch_up()
        if not until or until == self._followed:
            return
        if self._followed != "0" and not self.client.store.holds(self._followed):
            # The log lost what this timer followed (restored to an earlier point): wake-ups armed from events
            # now gone are not to be trusted, so they are made to match the log again.
            self.reconcile(now)
            return
        changed = {rec.aggregate for rec in self.client.store.read(after=self._followed, until=until, types=LIFECYCLE)}
        self._followed = until
        for schedule_id in changed:
            self._arm(schedule_id, self.read_models.get("schedules", schedule_id), now)

    # -- a pass ------------------------------------------------------------------------------

    def run_pass(self, now: datetime | None = None) -> int:
        """Fire what is due at ``now``; returns how many schedules were advanced."""
        now = now or self.clock()
        self.follow(now)
        due = self.registry.due(now)
        if not due:
            return 0
        docs = self.service.current(due, self.read_models.get_many("schedules", due))
        wakes: dict[str, datetime | None] = {}
        try:
            with self.service.one_pass():
                for schedule_id, doc in zip(due, docs, strict=True):
                    if doc is None or doc["status"] != ACTIVE:
                        wakes[schedule_id] = None
                        continue
                    try:
                        after = self.service.advance(doc, now)
                        wakes[schedule_id] = self.wake_at(after, now, QUEUE_RECHECK_SECONDS)
                    except STORE_ERRORS:
                        raise
                    except Exception as exc:
                        # One schedule whose history or decision raises is left alone (disarmed until the
                        # next reconcile): the others still fire.
                        wakes[schedule_id] = None
                        self._say_poisoned(schedule_id, exc)
        finally:
            # Re-armed in one round trip. A crash before this leaves the old scores, already due: the
            # next pass finds nothing left to fire for those schedules and re-arms them then.
            if wakes:
                self.registry.arm_many(wakes)
        return len(due)

    def _say_poisoned(self, schedule_id: str, exc: Exception) -> None:
        if schedule_id not in self._poisoned:
            self._poisoned.add(schedule_id)
            log.error("schedule left alone: deciding on it raised", schedule=schedule_id, error=f"{exc!r}"[:300])

    def run(self) -> None:
        """Reconcile, then pass whenever a wake-up is due (and every ``POLL_SECONDS``) until stopped."""
        log.info("timer started")
        next_reconcile = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_reconcile:
                    changed = self.reconcile()
                    if changed:
                        log.info("timer registry reconciled from the log", changed=changed)
                    next_reconcile = time.monotonic() + RECONCILE_SECONDS
                self.run_pass()
                soonest = self.registry.soonest()
                wait = POLL_SECONDS if soonest is None else min(POLL_SECONDS, soonest - self.clock().timestamp())
                self._stop.wait(max(0.0, wait))
            except (redis.ConnectionError, redis.TimeoutError, StoreUnavailable) as exc:
                log.warning("store unavailable; retrying", error=str(exc))
                self._stop.wait(1.0)
            except Exception:
                # A timer that dies silently fires nothing; one that logs and goes on fires the rest.
                log.exception("timer pass failed; retrying")
                self._stop.wait(1.0)
        log.info("timer stopped")
