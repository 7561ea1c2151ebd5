"""``jobledger metrics``: the log's metrics as Prometheus text, caught up with the log on every scrape; and the
console's own counters (its ``/metrics``: failed and throttled sign-ins)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry

from queue_core.console.sessions import LoginThrottle
from queue_core.eventlog.archive import events_after
from queue_core.eventlog.consumer_group import LAG_COUNT_LIMIT, ConsumerGroup
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import ReadModels
from queue_core.readmodels.metrics import Histogram, LogMetrics

__all__ = ["LogCollector", "SignInCollector", "registry_for"]


class LogCollector:
    """A Prometheus collector over one store: folds new events, then reports the fold and the dispatchers' lag."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.fold = LogMetrics()
        self.dispatchers = ConsumerGroup(store, store.keys.dispatch_group)
        self._lock = threading.Lock()
        self._epoch = store.epoch  # the store the fold was read from

    def catch_up(self) -> int:
        """Fold every event appended since the last call; returns how many.

        A fold the log no longer agrees with (another store, or a log restored to an earlier point: the fold's
        last event is gone) counts events that are gone: it is dropped and the log folded again from its start.
        """
        folded = 0
        with self._lock:
            if self.store.epoch != self._epoch or (
                self.fold.position != "0" and not self.store.holds(self.fold.position)
            ):
                self.fold, self._epoch = LogMetrics(), self.store.epoch
            for rec in events_after(self.store, after=self.fold.position):
                self.fold.apply(rec)
                folded += 1
        return folded

    def collect(self) -> Iterator[Metric]:
        self.catch_up()
        with self._lock:
            yield from _families(self.fold)
        yield from self._dispatcher_lag()
        yield _gauge(
            "jobledger_quarantined",
            "Entities whose history does not fold, set aside (jobledger check names them)",
            len(ReadModels(self.store).quarantined()),
        )

    def _dispatcher_lag(self) -> Iterator[Metric]:
        status = self.dispatchers.status(LAG_COUNT_LIMIT)
        now_ms = _server_ms(self.store)
        oldest = status.oldest_behind_ms
        yield _gauge("jobledger_dispatchers", "Dispatchers in the consumer group", status.consumers)
        yield _gauge("jobledger_dispatcher_lag_events", "Log entries no dispatcher has read yet", status.behind)
        yield _gauge(
            "jobledger_dispatcher_lag_seconds",
            "Age of the oldest log entry no dispatcher has read yet (0 when none), by Redis's clock",
            max(0.0, (now_ms - oldest) / 1000) if oldest is not None else 0.0,
        )
        yield _gauge(
            "jobledger_dispatcher_pending_events",
            "Log entries a dispatcher read but has not acknowledged",
            status.pending,
        )


def _families(fold: LogMetrics) -> Iterator[Metric]:
    runs = GaugeMetricFamily("jobledger_runs", "Runs by definition and current status", labels=["definition", "status"])
    for (definition, status), count in sorted(fold.runs.items()):
        runs.add_metric([definition, status], count)
    yield runs
    attempts = CounterMetricFamily(
        "jobledger_attempts", "Ended attempts by outcome and reason", labels=["status", "reason"]
    )
    for (status, reason), count in sorted(fold.attempts.items()):
        attempts.add_metric([status, reason], count)
    yield attempts
    depth = GaugeMetricFamily("jobledger_queue_depth", "Runs in their cluster's queue (In queue)", labels=["cluster"])
    for cluster, count in sorted(fold.in_queue.items()):
        depth.add_metric([cluster], count)
    yield depth
    yield _histograms(
        "jobledger_queue_wait_seconds",
        "From an attempt being ready (queued, or its retry due) to its start",
        "cluster",
        fold.queue_wait,
    )
    yield _histograms("jobledger_run_duration_seconds", "How long each attempt ran", "cluster", fold.run_duration)
    yield _histograms(
        "jobledger_schedule_lateness_seconds",
        "From a schedule's tick to the moment it fired",
        "schedule",
        fold.schedule_lateness,
    )
    missed = CounterMetricFamily("jobledger_schedule_ticks_missed", "Ticks not fired", labels=["schedule"])
    for name, count in sorted(fold.ticks_missed.items()):
        missed.add_metric([name], count)
    yield missed
    sent = CounterMetricFamily(
        "jobledger_notifications",
        "Notifications by destination kind and outcome: delivered, abandoned (failed for good), failed_attempt",
        labels=["kind", "outcome"],
    )
    for (kind, outcome), count in sorted(fold.notifications.items()):
        sent.add_metric([kind, outcome], count)
    yield sent
    events = CounterMetricFamily("jobledger_events", "Events appended to the log, by type", labels=["type"])
    for type_name, count in sorted(fold.events.items()):
        events.add_metric([type_name], count)
    yield events


def _histograms(name: str, documentation: str, label: str, series: dict[str, Histogram]) -> Metric:
    family = HistogramMetricFamily(name, documentation, labels=[label])
    for value, histogram in sorted(series.items()):
        family.add_metric([value], histogram.cumulative(), histogram.total)
    return family


def _gauge(name: str, documentation: str, value: float) -> Metric:
    return GaugeMetricFamily(name, documentation, value=value)


def _server_ms(store: EventStore) -> int:
    seconds, micros = store.redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


class SignInCollector:
    """The console's sign-in counters, read from its throttle on every scrape."""

    def __init__(self, throttle: LoginThrottle) -> None:
        self.throttle = throttle

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "jobledger_console_failed_logins",
            "Tokens given to the console (sign-in or bearer) that were checked and were wrong",
            value=self.throttle.failed_total,
        )
        yield CounterMetricFamily(
            "jobledger_console_throttled_logins",
            "Tokens given to the console during a client's wait after failures: refused (429) unchecked",
            value=self.throttle.throttled_total,
        )


def registry_for(collector: LogCollector | SignInCollector) -> CollectorRegistry:
    """A registry holding only ``collector``'s metrics (no process metrics of this exporter)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
