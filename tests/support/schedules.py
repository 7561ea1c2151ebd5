"""The schedule timer in tests: in process on a fake clock (``new_timer``, ``step_minutes``), or as a real
``jobledger scheduler`` process (``Procs.dispatcher(timer=True)``) with ticks due ``soon`` on the real one;
and what a schedule's history says (``fires``, ``outcomes``, ``fired_ticks``)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from queue_core import Client
from scheduler.timer import Timer
from tests.support.clock import Clock


def new_timer(client: Client, clock: Clock, reconcile: bool = True) -> Timer:
    """A timer reading ``clock``, as a scheduler starting now: its wake-ups reconciled from the schedules.

    ``reconcile=False``: it learns of schedules only by following the log, as between reconciles.
    """
    timer = Timer(client, clock=clock)
    if reconcile:
        timer.reconcile()
    return timer


def step_minutes(timer: Timer, clock: Clock, minutes: int) -> None:
    """Run the timer as a live scheduler would over ``minutes``: a pass every 10 simulated seconds."""
    for _ in range(minutes * 6):
        clock.advance(seconds=10)
        timer.run_pass()


def fires(client: Client, name: str) -> list[dict]:
    """The schedule's fired ticks, oldest first."""
    return [e for e in reversed(client.get_schedule(name, history=1000)["history"]) if e["outcome"] == "fired"]


def outcomes(client: Client, name: str) -> list[tuple[str, str]]:
    """``(HH:MM, outcome)`` of each tick of the schedule's history, oldest first."""
    history = client.get_schedule(name, history=1000)["history"]
    return [(e["tick"][11:16], e["outcome"]) for e in reversed(history) if e["tick"]]


def fired_ticks(client: Client) -> Counter[tuple[str, str]]:
    """How many ``ScheduleFired`` the log holds for each (schedule id, tick): 1 each when each tick fired once."""
    return Counter((r.aggregate, r.event.tick) for r in client.events(type="ScheduleFired"))  # type: ignore[attr-defined]


def soon(seconds: float) -> str:
    """A stamp (``...Z``, whole seconds) ``seconds`` from now on the real clock: an ``--at`` for a real scheduler."""
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds)
    return moment.isoformat().replace("+00:00", "Z")
