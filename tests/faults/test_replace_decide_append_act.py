"""Decide, append, then act: the run a tick replaces (``--overlap replace``) is cancelled only after the tick
is recorded, and the cancel is redone from the log if the timer dies in between.

The timer runs in this process on a fake clock, so the other writer's pause (a client of its own, on its own
connection) lands exactly between the timer's decision and its append: the append is where the timer is
held. No worker runs, so the first tick's run stays PENDING: active, the run a second tick replaces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from queue_core import Client, Settings
from queue_core.eventlog.events import NewEvent, Recorded, ScheduleFired
from scheduler.timer import Timer
from tests.support.clock import T0, Clock
from tests.support.faults import assert_log_holds
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs, eventually
from tests.support.schedules import fires, step_minutes


class TimerDied(BaseException):
    """Raised by the test's hook where the timer process would have died: nothing in the timer catches it."""


def _first_tick(client: Client, workspace: Path, timer: Timer, clock: Clock) -> str:
    client.define(definition("report", job_file(workspace, "report.sh", "true\n")))
    client.create_schedule("replacing", definition="report", cron="*/10 * * * *", overlap="replace", now=T0)
    step_minutes(timer, clock, 10)  # 08:10 fires
    (first,) = fires(client, "replacing")
    return str(first["run"])


def _fires_a_tick(batch: Sequence[NewEvent]) -> bool:
    return any(isinstance(new.event, ScheduleFired) for new in batch)


def test_a_pause_landing_between_a_replace_decision_and_its_append_leaves_the_previous_run_alone(
    client: Client, settings: Settings, workspace: Path, timer: Timer, clock: Clock, monkeypatch: pytest.MonkeyPatch
):
    first = _first_tick(client, workspace, timer, clock)
    operator = Client(settings=settings)
    append = client.store.append
    paused: list[str] = []

    def pause_first(batch: Sequence[NewEvent], expected: Mapping[str, int]) -> list[Recorded]:
        if _fires_a_tick(batch) and not paused:  # the 08:20 tick, decided a replace: the pause lands now
            paused.append(operator.pause_schedule("replacing")["status"])
        return append(batch, expected)

    monkeypatch.setattr(client.store, "append", pause_first)
    step_minutes(timer, clock, 10)  # 08:20
    assert paused == ["PAUSED"]
    assert client.get_schedule("replacing")["status"] == "PAUSED"
    assert [f["run"] for f in fires(client, "replacing")] == [first]  # the tick lost to the pause: not fired
    assert client.get_run(first)["status"] == "PENDING"  # nothing replaced it, so it was not cancelled
    assert client.events(type="RunCancelled") == []
    assert_log_holds(client, [first], ended=False)


def test_a_timer_dying_between_a_replacing_tick_and_its_cancel_has_the_dispatcher_cancel_from_the_log(
    client: Client, workspace: Path, timer: Timer, clock: Clock, procs: Procs, monkeypatch: pytest.MonkeyPatch
):
    first = _first_tick(client, workspace, timer, clock)
    append = client.store.append

    def die_after(batch: Sequence[NewEvent], expected: Mapping[str, int]) -> list[Recorded]:
        recorded = append(batch, expected)
        if _fires_a_tick(batch):
            raise TimerDied  # the tick is in the log; the cancel it calls for is not
        return recorded

    monkeypatch.setattr(client.store, "append", die_after)
    clock.advance(minutes=10)
    with pytest.raises(TimerDied):
        timer.run_pass()  # 08:20, decided a replace
    monkeypatch.undo()
    _, second_fire = fires(client, "replacing")
    assert (second_fire["replaced"], client.get_run(first)["status"]) == (first, "PENDING")
    procs.dispatcher()  # reads the tick from the log and does what the timer did not
    eventually(lambda: client.get_run(first)["status"] == "CANCELLED", what="the replaced run to be cancelled")
    assert len(client.events(type="RunCancelled")) == 1
    assert client.get_run(second_fire["run"])["status"] == "PENDING"
    assert_log_holds(client, [first, second_fire["run"]], ended=False)
