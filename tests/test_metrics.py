"""``jobledger metrics``: Prometheus text scraped over HTTP, parsed with prometheus-client, checked against the log."""

from __future__ import annotations

import urllib.request
from collections import Counter
from datetime import datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from queue_core import Client, Settings
from queue_core.readmodels.metrics import BUCKETS
from scheduler.dispatcher import Dispatcher
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs
from tests.support.servers import start_server
from tests.support.workload import mixed_workload, schedule_workload, workflow_workload

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(base: str) -> Samples:
    with urllib.request.urlopen(f"{base}/metrics", timeout=30) as response:
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def series(samples: Samples, name: str, label: str) -> dict[str, float]:
    """One label's value -> sample value, for an unlabelled-otherwise metric."""
    return {dict(labels)[label]: value for (sample, labels), value in samples.items() if sample == name}


def _t(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_a_fresh_metrics_process_reports_the_logs_history(client: Client, procs: Procs):
    mixed_workload(client, rounds=2)
    _, base = start_server(procs, "metrics", name="metrics")
    samples = scrape(base)
    runs = client.list_runs(limit=None)
    events = client.events()

    by_definition_status = Counter((r["definition"], r["status"]) for r in runs)
    reported = {
        (dict(labels)["definition"], dict(labels)["status"]): value
        for (name, labels), value in samples.items()
        if name == "jobledger_runs" and value
    }
    assert reported == by_definition_status

    ended = [a for r in runs for a in r["attempts"] if a["finished_at"]]
    attempts = Counter((a["status"], a["reason"] or "") for a in ended)
    reported_attempts = {
        (dict(labels)["status"], dict(labels)["reason"]): value
        for (name, labels), value in samples.items()
        if name == "jobledger_attempts_total"
    }
    assert reported_attempts == attempts
    assert {("SUCCEEDED", ""), ("FAILED", "NonZeroExitCode"), ("FAILED", "WorkerLost")} <= set(attempts)

    assert series(samples, "jobledger_events_total", "type") == Counter(rec.type for rec in events)

    in_queue = Counter(r["cluster"] for r in runs if (r["status"], r["reason"]) == ("PENDING", "In queue"))
    assert {k: v for k, v in series(samples, "jobledger_queue_depth", "cluster").items() if v} == in_queue

    # Each attempt waited from its run's RunQueued (attempt 1) or its retry's due time, to its start.
    ready: dict[tuple[str, int], float] = {}
    for rec in events:
        if rec.type == "RunQueued":
            ready[(rec.aggregate, rec.event.attempt)] = _t(rec.time)
        elif rec.type == "RunRetryScheduled":
            ready[(rec.aggregate, rec.event.attempt)] = _t(rec.event.not_before)
    waits = [max(0.0, _t(a["started_at"]) - ready[(r["id"], a["number"])]) for r in runs for a in r["attempts"]]
    labels = (("cluster", "default"),)
    default_waits = [
        max(0.0, _t(a["started_at"]) - ready[(r["id"], a["number"])])
        for r in runs
        for a in r["attempts"]
        if r["cluster"] == "default"
    ]
    assert samples[("jobledger_queue_wait_seconds_count", labels)] == len(default_waits)
    assert samples[("jobledger_queue_wait_seconds_sum", labels)] == pytest.approx(sum(default_waits))
    total_waits = sum(v for (n, _), v in samples.items() if n == "jobledger_queue_wait_seconds_count")
    assert total_waits == len(waits) == sum(1 for rec in events if rec.type == "RunStarted")

    durations = [_t(a["finished_at"]) - _t(a["started_at"]) for a in ended]
    assert sum(v for (n, _), v in samples.items() if n == "jobledger_run_duration_seconds_count") == len(durations)
    assert sum(v for (n, _), v in samples.items() if n == "jobledger_run_duration_seconds_sum") == pytest.approx(
        sum(durations)
    )
    bounds = [b for (n, lab), _ in samples.items() if n == "jobledger_run_duration_seconds_bucket" for b in [dict(lab)]]
    assert {float(b["le"]) for b in bounds} == {*BUCKETS, float("inf")}


def test_new_events_and_the_dispatchers_lag_show_in_the_next_scrape(
    client: Client, procs: Procs, settings: Settings, workspace
):
    client.define(definition("ok", job_file(workspace, "ok.sh", "true\n")))
    first = client.submit("ok")
    _, base = start_server(procs, "metrics", name="metrics")
    before = scrape(base)
    # No dispatcher has ever read the log: every entry is behind.
    assert before[("jobledger_dispatcher_lag_events", ())] == client.store.length()
    assert before[("jobledger_dispatchers", ())] == 0

    dispatcher = Dispatcher(settings, name="test-dispatcher")
    dispatcher.ensure_group()
    while dispatcher.step():
        pass
    assert client.get_run(first)["reason"] == "In queue"
    caught_up = scrape(base)
    assert caught_up[("jobledger_dispatcher_lag_events", ())] == 0
    assert caught_up[("jobledger_dispatcher_lag_seconds", ())] == 0
    assert caught_up[("jobledger_dispatchers", ())] == 1
    assert caught_up[("jobledger_queue_depth", (("cluster", "default"),))] == 1

    for _ in range(3):
        client.submit("ok")
    after = scrape(base)
    assert after[("jobledger_dispatcher_lag_events", ())] == 3
    assert after[("jobledger_runs", (("definition", "ok"), ("status", "PENDING")))] == 4
    assert after[("jobledger_events_total", (("type", "RunSubmitted"),))] == 4


def test_schedule_lateness_and_missed_ticks_are_folded_from_the_log(client: Client, procs: Procs):
    mixed_workload(client)
    workflow_workload(client)
    schedule_workload(client)
    _, base = start_server(procs, "metrics", name="metrics")
    samples = scrape(base)
    names = {s["id"]: s["name"] for s in client.list_schedules(include_deleted=True)}
    late: dict[str, list[float]] = {}
    missed: Counter[str] = Counter()
    for rec in client.events():
        if rec.type == "ScheduleFired":
            late.setdefault(names[rec.aggregate], []).append(max(0.0, _t(rec.time) - _t(rec.event.tick)))
        elif rec.type == "ScheduleTicksMissed":
            missed[names[rec.aggregate]] += len(rec.event.ticks)
    assert late and missed
    for name, values in late.items():
        labels = (("schedule", name),)
        assert samples[("jobledger_schedule_lateness_seconds_count", labels)] == len(values)
        assert samples[("jobledger_schedule_lateness_seconds_sum", labels)] == pytest.approx(sum(values))
    assert {
        k: v for k, v in series(samples, "jobledger_schedule_ticks_missed_total", "schedule").items() if v
    } == missed
