"""Triggers: a dataset trigger's lateness, from the DatasetWritten event to the triggered run's RunSubmitted.

A real ``python -m scheduler --timer`` process (the dispatcher, the schedule timer and the follow-ups that
fire triggers, as ``jobledger scheduler`` runs them) on a fresh redis-server. ``TRIGGERS`` definitions each
watch one dataset of a local depot (``mode: any``, no debounce). The benchmark appends ``WRITES``
``DatasetWritten`` events through the store's append, one every ``1 / RATE`` seconds, round robin over the
datasets (each on an aggregate of its own, as a SQL run's attempt appends it beside its ``RunSucceeded``;
no SQL runs, so no worker competes for the cores): every write fires its trigger once. The lateness of a
fire is its run's ``RunSubmitted`` append time minus the write's append time (both envelopes' ``t``, from
processes on the same machine), matched in order per dataset.

The peer, in the same run and the same scheduler process: ``WRITES`` one-time schedules (``--at``, the path
a cron tick takes), ``RATE`` of them due at each whole second over the same span; each one's lateness is
its ``RunSubmitted`` append time minus its tick. The writes are offset half a second from the ticks.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _harness import (
    Processes,
    check_children_import_code_under_test,
    code_under_test,
    emit,
    figure,
    interruptible,
    machine,
    parse_args,
    percentile,
    progress,
    ratio,
    subprocess_env,
)
from _redis import RedisServer

from queue_core import Client, Settings
from queue_core.domain.schedules import instant
from queue_core.eventlog.events import DatasetWritten, NewEvent

TRIGGERS = 10
WRITES = 200
RATE = 5  # writes (and ticks) per second
LEAD_SECONDS = 3
READY_TIMEOUT_SECONDS = 60.0
FIRE_TIMEOUT_SECONDS = 120.0


def definition(name: str, trigger: dict[str, Any] | None = None) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": name,
        "config": {
            "source": {"type": "WORKSPACE", "sourceDef": {"path": "jobs"}},
            "type": "SHELL",
            "sourceLocation": "true.sh",
            "timeout": 1,
        },
        "cluster": {"name": "default"},
    }
    return {**raw, "trigger": trigger} if trigger else raw


def dataset(i: int) -> str:
    return f"dataos://wh:bench/d{i}"


def wait_for(check: Any, timeout: float, what: str, processes: Processes) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        processes.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def write(client: Client, i: int) -> None:
    written = DatasetWritten(
        dataset=dataset(i), format="parquet", save_mode="overwrite", rows=1, fingerprint="bench", attempt=1
    )
    aggregate = str(uuid.uuid4())
    client.store.append([NewEvent(aggregate, written)], {aggregate: 0})


def seconds(later: str, earlier: str) -> float:
    return (instant(later) - instant(earlier)).total_seconds()


def one_repeat(root: Path) -> dict[str, float]:
    server = RedisServer(root / "redis").start()
    processes = Processes(root / "logs")
    try:
        settings = Settings(redis_url=server.url, home=root / "home", workspace=root.parent / "workspace")
        client = Client(settings=settings)
        client.add_depot("wh", "local", path=str(root / "lake"))
        client.define(definition("tick"))
        ids = [client.define(definition(f"on-d{i}", {"datasets": [dataset(i)]})).id for i in range(TRIGGERS)]
        env = subprocess_env(REDIS_URL=server.url, JOBLEDGER_HOME=str(settings.home))
        check_children_import_code_under_test(env, processes.log_dir)
        processes.spawn([sys.executable, "-m", "scheduler", "--timer"], "scheduler", env)
        # Ready: a warm-up write has fired its trigger and a warm-up schedule has fired.
        warm = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
        client.create_schedule("warm-up", definition="tick", at=warm.isoformat())
        write(client, 0)
        wait_for(
            lambda: client.get_schedule("warm-up")["fired"] and client.get_trigger("on-d0")["fired"],
            READY_TIMEOUT_SECONDS,
            "the warm-up",
            processes,
        )
        span = WRITES // RATE
        first = (datetime.now(UTC) + timedelta(seconds=LEAD_SECONDS + span * 0.05)).replace(microsecond=0)
        ticks = [first + timedelta(seconds=k // RATE) for k in range(WRITES)]
        for k, tick in enumerate(ticks):
            client.create_schedule(f"due-{k}", definition="tick", at=tick.isoformat())
        if datetime.now(UTC) >= first:
            raise RuntimeError("creating the schedules took longer than the lead time")
        # The writes: one every 1/RATE s from half a second past the first tick, on a monotonic clock.
        start = time.monotonic() + (first - datetime.now(UTC)).total_seconds() + 0.5
        for k in range(WRITES):
            delay = start + k / RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            write(client, k % TRIGGERS)
        wait_for(
            lambda: len(client.events(type="RunSubmitted")) >= 2 * WRITES + 2,
            FIRE_TIMEOUT_SECONDS,
            "every fire",
            processes,
        )
        submitted = {rec.aggregate: rec for rec in client.events(type="RunSubmitted")}
        # Clock: each due schedule's run against its tick.
        clock = [
            seconds(submitted[rec.event.run].time, rec.event.tick) * 1000  # type: ignore[attr-defined]
            for rec in client.events(type="ScheduleFired")
            if rec.event.tick != warm.isoformat().replace("+00:00", "Z")  # type: ignore[attr-defined]
        ]
        # Datasets: the k-th write of a dataset against the k-th fire of its trigger.
        writes: dict[str, list[str]] = {}
        for rec in client.events(type="DatasetWritten"):
            writes.setdefault(rec.event.dataset, []).append(rec.time)  # type: ignore[attr-defined]
        fires: dict[str, list[str]] = {}
        for rec in client.events(type="TriggerFired"):
            fires.setdefault(rec.event.target, []).append(rec.event.run)  # type: ignore[attr-defined]
        data: list[float] = []
        for i, target in enumerate(ids):
            times, runs = writes[dataset(i)], fires[target]
            if len(times) != len(runs):
                raise RuntimeError(f"dataset d{i}: {len(times)} writes fired {len(runs)} times (writes coalesced)")
            data += [seconds(submitted[r].time, t) * 1000 for t, r in zip(times, runs, strict=True)]
        data = data[1:]  # the warm-up write (d0's first)
        if (len(clock), len(data)) != (WRITES, WRITES):
            raise RuntimeError(f"{len(clock)} clock fires and {len(data)} trigger fires, not {WRITES} each")
        figures = {
            "trigger_p50_ms": percentile(data, 50),
            "trigger_p99_ms": percentile(data, 99),
            "trigger_max_ms": max(data),
            "clock_p50_ms": percentile(clock, 50),
            "clock_p99_ms": percentile(clock, 99),
            "clock_max_ms": max(clock),
        }
        progress(", ".join(f"{k} {v:.1f}" for k, v in figures.items()))
        return figures
    finally:
        processes.stop()
        server.stop()


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    result: dict[str, Any] = {"benchmark": "bench_triggers", "machine": machine(), "code": code_under_test()}
    repeats: list[dict[str, float]] = []
    with interruptible(), tempfile.TemporaryDirectory(prefix="bench-triggers-") as tmp:
        root = Path(tmp)
        (root / "workspace" / "jobs").mkdir(parents=True)
        (root / "workspace" / "jobs" / "true.sh").write_text("true\n")
        for k in range(args.repeat):
            progress(f"repeat {k + 1}/{args.repeat}")
            repeats.append(one_repeat(root / f"repeat-{k}"))
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]

    def of(key: str) -> list[float]:
        return [r[key] for r in repeats]

    result.update(
        {
            "placement": "benchmark client, redis-server and the scheduler process unpinned",
            "redis": "a private redis-server per repeat on loopback TCP: appendonly yes, appendfsync everysec, "
            "noeviction",
            "repeat": args.repeat,
            "trigger": {
                "what": f"{WRITES} DatasetWritten events, {RATE}/s round robin over {TRIGGERS} datasets each watched "
                "by one trigger (any, no debounce), one `python -m scheduler --timer` process: the fired run's "
                "RunSubmitted append time minus the write's",
                "p50_ms": figure(of("trigger_p50_ms"), 1),
                "p99_ms": figure(of("trigger_p99_ms"), 1),
                "max_ms": figure(of("trigger_max_ms"), 1),
                "aim": "p99 < 1000 ms",
            },
            "clock": {
                "what": f"{WRITES} --at schedules, {RATE} due at each whole second over the same span, the same "
                "scheduler process: RunSubmitted append time minus the tick",
                "p50_ms": figure(of("clock_p50_ms"), 1),
                "p99_ms": figure(of("clock_p99_ms"), 1),
                "max_ms": figure(of("clock_max_ms"), 1),
            },
            "ratio_trigger_clock_p50": ratio(of("trigger_p50_ms"), of("clock_p50_ms")),
            "ratio_trigger_clock_p99": ratio(of("trigger_p99_ms"), of("clock_p99_ms")),
        }
    )
    emit(result)


if __name__ == "__main__":
    main()
