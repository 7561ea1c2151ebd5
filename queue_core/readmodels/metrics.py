"""Operational metrics as a fold of the log: runs by status, attempts by reason, waits, durations, queues.

Everything here is computed from events alone (their envelope times, never a clock), so a fresh
process that folds the log from its start reports the whole history, and two processes that folded
the same log report the same numbers.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from queue_core.domain.runs import (
    CANCELLED,
    FAILED,
    IN_QUEUE,
    PENDING,
    RECENTLY_SUBMITTED,
    RUNNING,
    SUCCEEDED,
    WAITING_TO_RETRY,
)
from queue_core.domain.schedules import instant
from queue_core.eventlog.events import Recorded

__all__ = ["BUCKETS", "Histogram", "LogMetrics"]

# Seconds: from a few milliseconds (a run picked up at once) to two hours (a long job or a deep queue).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 7200.0)


def seconds_of(stamp: str) -> float:
    """A log time (ISO 8601, ``Z``) as seconds since the epoch."""
    return instant(stamp).timestamp()


@dataclass
class Histogram:
    """Observations counted into fixed buckets (each count is of its bucket alone; ``cumulative`` adds up)."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, float]]:
        """Prometheus buckets: ``(le, observations <= le)``, ending with ``+Inf``."""
        out, running = [], 0
        for bound, count in zip([*map(str, BUCKETS), "+Inf"], self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


@dataclass
class _Run:
    """What the fold keeps of one run: enough to move its counts and time its attempts."""

    definition: str
    cluster: str
    status: str = PENDING
    reason: str | None = RECENTLY_SUBMITTED
    ready_at: float | None = None  # when the current attempt could start: queued, or its retry was due
    started_at: float | None = None  # when the current attempt started, while it runs


@dataclass
class LogMetrics:
    """The metrics of a log, moved forward one event at a time by ``apply``."""

    position: str = "0"
    events: Counter[str] = field(default_factory=Counter)
    runs: Counter[tuple[str, str]] = field(default_factory=Counter)  # (definition, status) -> runs
    attempts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (status, reason) -> ended attempts
    in_queue: Counter[str] = field(default_factory=Counter)  # cluster -> runs PENDING "In queue"
    queue_wait: dict[str, Histogram] = field(default_factory=dict)  # cluster -> seconds ready to started
    run_duration: dict[str, Histogram] = field(default_factory=dict)  # cluster -> seconds an attempt ran
    schedule_lateness: dict[str, Histogram] = field(default_factory=dict)  # schedule -> fired after its tick
    ticks_missed: Counter[str] = field(default_factory=Counter)  # schedule -> ticks not fired
    unfoldable: int = 0  # events whose fold raised (their aggregates are quarantined)
    # (destination kind, outcome) -> notifications delivered, given up ("abandoned"), or attempts that failed
    notifications: Counter[tuple[str, str]] = field(default_factory=Counter)
    _notification_kinds: dict[str, str] = field(default_factory=dict)  # notification id -> destination kind
    _runs: dict[str, _Run] = field(default_factory=dict)
    _schedules: dict[str, str] = field(default_factory=dict)  # schedule id -> name

    def apply(self, rec: Recorded) -> None:
        """Fold one event in; events of types that carry no metric only count as appended."""
        self.position = rec.position
        self.events[rec.type] += 1
        handler = _HANDLERS.get(rec.type)
        if handler is not None:
            try:
                handler(self, rec, rec.event)
            except Exception:  # an event of a quarantined aggregate: the read models name it; the metrics go on
                self.unfoldable += 1

    # -- runs ---------------------------------------------------------------------------------

    def _move(self, run: _Run, status: str, reason: str | None) -> None:
        if run.reason == IN_QUEUE and run.status == PENDING:
            self.in_queue[run.cluster] -= 1
        if status == PENDING and reason == IN_QUEUE:
            self.in_queue[run.cluster] += 1
        if status != run.status:
            self.runs[(run.definition, run.status)] -= 1
            self.runs[(run.definition, status)] += 1
        run.status, run.reason = status, reason

    def _end_attempt(self, run: _Run, at: float, status: str, reason: str) -> None:
        self.attempts[(status, reason)] += 1
        if run.started_at is not None:
            self.run_duration.setdefault(run.cluster, Histogram()).observe(max(0.0, at - run.started_at))
        run.started_at = None

    def _submitted(self, rec: Recorded, event: Any) -> None:
        run = self._runs[rec.aggregate] = _Run(event.definition, event.cluster)
        self.runs[(run.definition, PENDING)] += 1

    def _queued(self, rec: Recorded, event: Any) -> None:
        run = self._runs.get(rec.aggregate)
        if run is not None:
            self._move(run, PENDING, IN_QUEUE)
            run.ready_at = seconds_of(rec.time)

    def _started(self, rec: Recorded, event: Any) -> None:
        run = self._runs.get(rec.aggregate)
        if run is None:
            return
        at = seconds_of(rec.time)
        if run.ready_at is not None:
            self.queue_wait.setdefault(run.cluster, Histogram()).observe(max(0.0, at - run.ready_at))
        run.ready_at, run.started_at = None, at
        self._move(run, RUNNING, None)

    def _attempt_failed(self, rec: Recorded, event: Any) -> None:
        run = self._runs.get(rec.aggregate)
        if run is not None:
            self._end_attempt(run, seconds_of(rec.time), FAILED, event.reason)

    def _retry_scheduled(self, rec: Recorded, event: Any) -> None:
        run = self._runs.get(rec.aggregate)
        if run is not None:
            self._move(run, PENDING, WAITING_TO_RETRY)
            run.ready_at = seconds_of(event.not_before)

    def _succeeded(self, rec: Recorded, event: Any) -> None:
        run = self._runs.get(rec.aggregate)
        if run is not None:
            self._end_attempt(run, seconds_of(rec.time), SUCCEEDED, "")
            self._move(run, SUCCEEDED, None)

    def _failed(self, rec: Recorded, event: Any) -> None:
        run = self._runs.get(rec.aggregate)
        if run is not None:
            self._move(run, FAILED, event.reason)

    def _cancelled(self, rec: Recorded, event: Any) -> None:
        run = self._runs.get(rec.aggregate)
        if run is None:
            return
        if run.status == RUNNING:
            self._end_attempt(run, seconds_of(rec.time), CANCELLED, event.reason)
        self._move(run, CANCELLED, event.reason)

    # -- schedules -----------------------------------------------------------------------------------

    def _schedule_created(self, rec: Recorded, event: Any) -> None:
        self._schedules[rec.aggregate] = event.name

    def _schedule_fired(self, rec: Recorded, event: Any) -> None:
        name = self._schedules.get(rec.aggregate, rec.aggregate)
        lateness = max(0.0, seconds_of(rec.time) - seconds_of(event.tick))
        self.schedule_lateness.setdefault(name, Histogram()).observe(lateness)

    def _ticks_missed(self, rec: Recorded, event: Any) -> None:
        self.ticks_missed[self._schedules.get(rec.aggregate, rec.aggregate)] += len(event.ticks)

    # -- notifications -------------------------------------------------------------------------------

    def _notification_due(self, rec: Recorded, event: Any) -> None:
        self._notification_kinds[rec.aggregate] = next(
            k for k in ("webhook", "slack", "email") if k in event.destination
        )

    def _notification_ended(self, rec: Recorded, event: Any) -> None:
        kind = self._notification_kinds.pop(rec.aggregate, "unknown")
        self.notifications[(kind, "delivered" if rec.type == "NotificationDelivered" else "abandoned")] += 1

    def _notification_failed(self, rec: Recorded, event: Any) -> None:
        self.notifications[(self._notification_kinds.get(rec.aggregate, "unknown"), "failed_attempt")] += 1


_HANDLERS = {
    "RunSubmitted": LogMetrics._submitted,
    "RunQueued": LogMetrics._queued,
    "RunStarted": LogMetrics._started,
    "RunAttemptFailed": LogMetrics._attempt_failed,
    "RunRetryScheduled": LogMetrics._retry_scheduled,
    "RunSucceeded": LogMetrics._succeeded,
    "RunFailed": LogMetrics._failed,
    "RunCancelled": LogMetrics._cancelled,
    "ScheduleCreated": LogMetrics._schedule_created,
    "ScheduleFired": LogMetrics._schedule_fired,
    "ScheduleTicksMissed": LogMetrics._ticks_missed,
    "NotificationDue": LogMetrics._notification_due,
    "NotificationDelivered": LogMetrics._notification_ended,
    "NotificationAbandoned": LogMetrics._notification_ended,
    "NotificationFailed": LogMetrics._notification_failed,
}
