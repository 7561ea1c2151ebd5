"""Rows 27-29: two schedulers, a scheduler stopped over its ticks, a scheduler killed with its timers lost.

Real ``jobledger scheduler`` processes (dispatcher + timer) against this test's own redis-server.
Each tick is decided once whatever happens: ``ScheduleFired`` and its ``RunSubmitted`` go in one batch
at the schedule's expected version, with event and run ids derived from (schedule, tick).

Differences from the matrix, on purpose: schedules here tick at most once a minute (cron) or once
(``--at``), so the tests use one-time schedules due seconds apart instead of 1 s periods; a pass made
slower than the interval is covered by an in-process test with an injected clock
(``tests/test_schedules.py::test_a_slow_pass_deciding_from_a_stale_read_fires_nothing_twice``).
"""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

from queue_core import Client
from queue_core.keys import Keys
from tests.support.faults import assert_log_holds
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs, eventually
from tests.support.schedules import fired_ticks, soon


def test_row_27_two_schedulers_fire_each_tick_once(client: Client, workspace: Path, procs: Procs):
    client.define(definition("tick", job_file(workspace, "tick.sh", "true\n")))
    first, second = procs.dispatcher(timer=True), procs.dispatcher(timer=True)
    at = soon(3)
    names = [f"both-{i}" for i in range(30)]
    for name in names:
        client.create_schedule(name, definition="tick", at=at)
    eventually(lambda: sum(s["fired"] for s in client.list_schedules()) >= len(names), timeout=60, what="30 fires")
    assert first.poll() is None and second.poll() is None
    fired = fired_ticks(client)
    assert len(fired) == len(names) and set(fired.values()) == {1}
    assert len(client.events(type="RunSubmitted")) == len(names)
    assert_log_holds(client, ended=False)


def test_row_28_a_stopped_scheduler_applies_each_catch_up_policy_and_records_every_missed_tick(
    client: Client, workspace: Path, procs: Procs
):
    client.define(definition("tick", job_file(workspace, "tick.sh", "true\n")))
    stopped = procs.dispatcher(timer=True, env={**procs.env, "JOBLEDGER_SCHEDULE_ON_TIME_SECONDS": "2"})
    keys = Keys()

    def consuming() -> bool:
        try:
            return bool(client.store.redis.xinfo_consumers(keys.log, keys.dispatch_group))
        except redis.ResponseError:  # no group yet
            return False

    eventually(consuming, what="the scheduler to start")
    os.kill(stopped.pid, signal.SIGSTOP)
    at = soon(2)
    for policy in ("all", "latest", "none"):
        client.create_schedule(f"missed-{policy}", definition="tick", at=at, catchup=policy)
    # The ticks pass while the scheduler is stopped, and then the on-time window too.
    eventually(lambda: datetime.now(UTC) > datetime.fromisoformat(at) + timedelta(seconds=4), what="the window")
    os.kill(stopped.pid, signal.SIGCONT)
    eventually(
        lambda: all(s["status"] == "ENDED" for s in client.list_schedules()), timeout=60, what="every tick decided"
    )
    shown = {name: client.get_schedule(name) for name in ("missed-all", "missed-latest", "missed-none")}
    assert [e["outcome"] for e in shown["missed-all"]["history"] if e["tick"]] == ["fired"]
    assert [e["outcome"] for e in shown["missed-latest"]["history"] if e["tick"]] == ["fired"]
    assert shown["missed-none"]["missed"] == 1 and shown["missed-none"]["fired"] == 0
    caught_up = [r.event.caught_up for r in client.events(type="ScheduleFired")]  # type: ignore[attr-defined]
    assert caught_up == [True, True]  # fired late, and recorded as caught up: nothing silent
    assert_log_holds(client, ended=False)


def test_row_29_a_scheduler_killed_with_its_timers_lost_rearms_them_and_loses_no_tick(
    client: Client, workspace: Path, procs: Procs, redis_url: str
):
    client.define(definition("tick", job_file(workspace, "tick.sh", "true\n")))
    first = procs.dispatcher(timer=True)
    at = soon(4)
    for i in range(5):
        client.create_schedule(f"rearmed-{i}", definition="tick", at=at)
    connection = redis.Redis.from_url(redis_url)
    eventually(lambda: connection.zcard(Keys().timer_scheduled) == 5, what="the five wake-ups to be armed")
    first.kill()  # SIGKILL: nothing is cleaned up
    first.wait()
    connection.delete(Keys().timer_scheduled)  # the wake-ups a crash between ZREM and re-arm would lose
    procs.dispatcher(timer=True)
    eventually(lambda: sum(s["fired"] for s in client.list_schedules()) >= 5, timeout=60, what="five fires")
    fired = fired_ticks(client)
    assert len(fired) == 5 and set(fired.values()) == {1}
    assert_log_holds(client, ended=False)
