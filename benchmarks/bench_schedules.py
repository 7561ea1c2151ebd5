"""Schedules: firing lateness of 100 schedules due in the same second, and one timer pass over 10,000 due schedules.

Lateness: a real ``python -m scheduler --timer`` process (the dispatcher and the timer, as ``jobledger
scheduler`` runs them) on a fresh redis-server; 100 one-time schedules (``--at``, the same path a cron
tick takes) are created for the same whole second a few seconds ahead; the lateness of each is its
``ScheduleFired`` event's append time (the envelope's ``t``, stamped by the scheduler process on the
same machine) minus the tick. p50 and p99 over the 100, per repeat.

Pass cost: 10,000 cron schedules (``*/5 * * * *`` on one SHELL definition, the default cluster) are
written to a fresh store through the store's own append script (creating them is not measured), the
timer reconciles its rq-scheduler registry from them (timed: ``reconcile``), then one ``Timer.run_pass``
at 0.5 s past their common tick fires all 10,000 (each: a ScheduleFired + RunSubmitted batch, and the
wake-up re-armed), timed in-process with an injected clock; an idle pass (10,000 registered, none due)
is timed too. The peer, in the same repeat on its own fresh redis-server: rq-scheduler's own
``Scheduler.enqueue_jobs()`` moving 10,000 due plain jobs (``enqueue_at`` in the past) onto their queue.
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
from _plain_job import run_script
from _redis import RedisServer
from rq_scheduler import Scheduler

from queue_core import Client, Settings
from queue_core.domain.names import name_aggregate
from queue_core.domain.schedules import SCHEDULE_KIND, instant
from queue_core.eventlog.events import NameClaimed, NewEvent, ScheduleCreated, encode
from queue_core.timefmt import utc_now
from scheduler.timer import Timer

LATENESS_SCHEDULES = 100
PASS_SCHEDULES = 10_000
LEAD_SECONDS = 4
READY_TIMEOUT_SECONDS = 60.0
FIRE_TIMEOUT_SECONDS = 120.0
DEFINITION = {
    "name": "tick",
    "config": {
        "source": {"type": "WORKSPACE", "sourceDef": {"path": "jobs"}},
        "type": "SHELL",
        "sourceLocation": "true.sh",
        "timeout": 1,
    },
    "cluster": {"name": "default"},
}


def settings_for(server: RedisServer, root: Path) -> Settings:
    return Settings(redis_url=server.url, home=root / "home", workspace=root / "workspace")


def wait_for(check: Any, timeout: float, what: str, processes: Processes | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if processes is not None:
            processes.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def lateness(root: Path) -> dict[str, float]:
    server = RedisServer(root / "redis-lateness").start()
    processes = Processes(root / "logs")
    try:
        settings = settings_for(server, root)
        client = Client(settings=settings)
        client.define(DEFINITION)
        env = subprocess_env(REDIS_URL=server.url, JOBLEDGER_HOME=str(settings.home))
        check_children_import_code_under_test(env, processes.log_dir)
        processes.spawn([sys.executable, "-m", "scheduler", "--timer"], "scheduler", env)
        # Ready: a warm-up schedule has fired.
        warm = (datetime.now(UTC) + timedelta(seconds=2)).replace(microsecond=0)
        client.create_schedule("warm-up", definition="tick", at=warm.isoformat())
        wait_for(lambda: client.get_schedule("warm-up")["fired"], READY_TIMEOUT_SECONDS, "the warm-up", processes)
        tick = (datetime.now(UTC) + timedelta(seconds=LEAD_SECONDS)).replace(microsecond=0)
        for i in range(LATENESS_SCHEDULES):
            client.create_schedule(f"due-{i}", definition="tick", at=tick.isoformat())
        if datetime.now(UTC) >= tick:
            raise RuntimeError("creating the schedules took longer than the lead time")
        wait_for(
            lambda: len(client.events(type="ScheduleFired")) >= LATENESS_SCHEDULES + 1,
            FIRE_TIMEOUT_SECONDS,
            "the 100 fires",
            processes,
        )
        late = [
            (instant(rec.time) - instant(rec.event.tick)).total_seconds() * 1000  # type: ignore[attr-defined]
            for rec in client.events(type="ScheduleFired")
            if rec.event.tick == tick.isoformat().replace("+00:00", "Z")  # type: ignore[attr-defined]
        ]
        assert len(late) == LATENESS_SCHEDULES, len(late)
        figures = {"p50_ms": percentile(late, 50), "p99_ms": percentile(late, 99), "max_ms": max(late)}
        progress("lateness " + ", ".join(f"{k} {v:.1f}" for k, v in figures.items()))
        return figures
    finally:
        processes.stop()
        server.stop()


def write_schedules(client: Client, count: int, start: datetime) -> None:
    """``count`` cron schedules, appended through the store's own script, pipelined (not measured)."""
    store = client.store
    pipe = store.redis.pipeline(transaction=False)
    now = utc_now()
    for i in range(count):
        schedule_id = str(uuid.uuid4())
        name = f"s{i}"
        created = ScheduleCreated(
            name=name,
            target_kind="definition",
            target="tick",
            timezone="UTC",
            start=start.isoformat().replace("+00:00", "Z"),
            cron="*/5 * * * *",
            overlap="allow",
        )
        claim = NameClaimed(kind=SCHEDULE_KIND, name=name, owner=schedule_id)
        for new in (NewEvent(name_aggregate(SCHEDULE_KIND, name), claim), NewEvent(schedule_id, created)):
            keys = [store.keys.log, store.keys.epoch, store.keys.aggregate(new.aggregate)]
            store._append(keys=keys, args=[store.epoch, 1, 0, 1, new.event_id, encode(new, 1, now)], client=pipe)
        if i % 500 == 499:
            pipe.execute()
    pipe.execute()


def one_pass(root: Path, k: int) -> dict[str, float]:
    server = RedisServer(root / f"redis-pass-{k}").start()
    try:
        client = Client(settings=settings_for(server, root))
        client.define(DEFINITION)
        tick = datetime(2026, 11, 21, 8, 5, tzinfo=UTC)
        write_schedules(client, PASS_SCHEDULES, tick - timedelta(seconds=1))
        client.read_models.catch_up()
        now = tick + timedelta(milliseconds=500)
        timer = Timer(client, clock=lambda: now)
        started = time.perf_counter()
        timer.reconcile()
        reconcile_s = time.perf_counter() - started
        timer.run_pass(tick - timedelta(seconds=10))  # the log followed; nothing due yet
        started = time.perf_counter()
        timer.run_pass(tick - timedelta(seconds=5))
        idle_s = time.perf_counter() - started
        started = time.perf_counter()
        advanced = timer.run_pass(now)
        pass_s = time.perf_counter() - started
        fired = len(client.events(type="RunSubmitted"))
        if (advanced, fired) != (PASS_SCHEDULES, PASS_SCHEDULES):
            raise RuntimeError(f"the pass advanced {advanced} schedules and submitted {fired} runs")
        figures = {"pass_s": pass_s, "idle_pass_ms": idle_s * 1000, "reconcile_s": reconcile_s}
        progress("pass " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()))
        return figures
    finally:
        server.stop()


def peer_pass(root: Path, k: int) -> float:
    server = RedisServer(root / f"redis-peer-{k}").start()
    try:
        scheduler = Scheduler(connection=server.client(), queue_name="default", interval=1)
        past = datetime.now(UTC) - timedelta(minutes=1)
        for _ in range(PASS_SCHEDULES):
            scheduler.enqueue_at(past, run_script, "true.sh")
        started = time.perf_counter()
        moved = scheduler.enqueue_jobs()
        seconds = time.perf_counter() - started
        queued = server.client().llen("rq:queue:default")
        if queued != PASS_SCHEDULES:
            raise RuntimeError(f"rq-scheduler moved {queued} jobs, not {PASS_SCHEDULES} ({len(list(moved))})")
        progress(f"rq-scheduler enqueue_jobs of {PASS_SCHEDULES}: {seconds:.3f} s")
        return seconds
    finally:
        server.stop()


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    result: dict[str, Any] = {"benchmark": "bench_schedules", "machine": machine(), "code": code_under_test()}
    late: list[dict[str, float]] = []
    passes: list[dict[str, float]] = []
    peers: list[float] = []
    with interruptible(), tempfile.TemporaryDirectory(prefix="bench-schedules-") as tmp:
        root = Path(tmp)
        (root / "workspace" / "jobs").mkdir(parents=True)
        (root / "workspace" / "jobs" / "true.sh").write_text("true\n")
        for k in range(args.repeat):
            progress(f"repeat {k + 1}/{args.repeat}")
            late.append(lateness(root / f"late-{k}"))
            # The two sides of the pass figure back to back, their order alternating between repeats.
            if k % 2:
                peers.append(peer_pass(root, k))
                passes.append(one_pass(root, k))
            else:
                passes.append(one_pass(root, k))
                peers.append(peer_pass(root, k))
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    pass_s = [p["pass_s"] for p in passes]
    result.update(
        {
            "placement": "benchmark client, redis-server and (lateness) the scheduler process unpinned",
            "redis": "a private redis-server per figure per repeat on loopback TCP: appendonly yes, "
            "appendfsync everysec, noeviction",
            "repeat": args.repeat,
            "lateness": {
                "what": f"{LATENESS_SCHEDULES} --at schedules due in the same second, one `python -m scheduler "
                "--timer` process: ScheduleFired append time minus the tick",
                "p50_ms": figure([x["p50_ms"] for x in late], 1),
                "p99_ms": figure([x["p99_ms"] for x in late], 1),
                "max_ms": figure([x["max_ms"] for x in late], 1),
                "aim": "p99 < 1000 ms",
            },
            "pass": {
                "what": f"one Timer.run_pass firing {PASS_SCHEDULES:,} due cron schedules (ScheduleFired + "
                "RunSubmitted each, wake-up re-armed), in-process, injected clock",
                "jobledger_s": figure(pass_s, 3),
                "per_schedule_ms": figure([s / PASS_SCHEDULES * 1000 for s in pass_s], 3),
                "rq_scheduler_enqueue_jobs_s": figure(peers, 3),
                "ratio_jobledger_rq_scheduler": ratio(pass_s, peers),
                "idle_pass_ms": figure([p["idle_pass_ms"] for p in passes], 2),
                "reconcile_s": figure([p["reconcile_s"] for p in passes], 3),
                "peer": f"rq-scheduler Scheduler.enqueue_jobs() moving {PASS_SCHEDULES:,} due plain jobs "
                "(enqueue_at in the past) onto their queue",
            },
        }
    )
    emit(result)


if __name__ == "__main__":
    main()
