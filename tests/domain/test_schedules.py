"""Schedules: what ``plan`` makes of the due ticks (fire, skip, queue, miss, end) and ``next_tick``, as tables.

Each row's schedule is its history folded through ``apply_schedule``; ``now`` and whether the previous
run is still active are given, as the timer gives them. Times are 2026-11-21, UTC, unless a row says.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest

from queue_core.domain.schedules import (
    MAX_TICKS_PER_EVENT,
    MAX_TICKS_PER_PASS,
    Step,
    apply_schedule,
    next_tick,
    plan,
    stamp,
    timing_of,
)
from queue_core.eventlog.events import (
    Event,
    ScheduleCreated,
    ScheduleDeleted,
    ScheduleEnded,
    ScheduleFired,
    SchedulePaused,
    ScheduleResumed,
    ScheduleTickQueued,
    ScheduleTickSkipped,
    ScheduleTicksMissed,
)
from tests.support.events import fold, fold_more
from tests.support.tables import cases

SID = "schedule-1"
DAY = datetime(2026, 11, 21, tzinfo=UTC)


def t(clock: str, day: datetime = DAY) -> datetime:
    """``"08:10"`` or ``"08:10:05"`` on ``day``, UTC."""
    hours, minutes, *seconds = (int(part) for part in clock.split(":"))
    return day.replace(hour=hours, minute=minutes, second=seconds[0] if seconds else 0)


def s(clock: str) -> str:
    """The stamp of ``t(clock)``, as the log holds ticks: ``2026-11-21T08:10:00Z``."""
    return stamp(t(clock))


# -- histories --------------------------------------------------------------------------------------


def created(
    cron: str | None = "*/10 * * * *", at: str | None = None, catchup: str = "latest", overlap: str = "skip",
    end: str | None = None, start: str = "08:00:30", timezone: str = "UTC",
) -> ScheduleCreated:  # fmt: skip
    return ScheduleCreated(
        name="report", target_kind="definition", target="report", timezone=timezone, start=s(start), cron=cron,
        at=s(at) if at else None, end=s(end) if end else None, catchup=catchup, overlap=overlap,
    )  # fmt: skip


def fired(tick: str, caught_up: bool = False) -> ScheduleFired:
    return ScheduleFired(tick=s(tick), logical_date=s(tick), run=f"run-{tick}", caught_up=caught_up)


def queued(tick: str, caught_up: bool = False) -> ScheduleTickQueued:
    return ScheduleTickQueued(tick=s(tick), logical_date=s(tick), behind="run-before", caught_up=caught_up)


def missed(*ticks: str) -> ScheduleTicksMissed:
    return ScheduleTicksMissed(ticks=tuple(s(tick) for tick in ticks))


# -- what plan says ----------------------------------------------------------------------------------


def FIRE(tick: str, caught_up: bool = False, replace: bool = False) -> Step:
    return Step("fire", (t(tick),), caught_up=caught_up, replace=replace)


def SKIP(tick: str) -> Step:
    return Step("skip", (t(tick),))


def QUEUE(tick: str, caught_up: bool = False) -> Step:
    return Step("queue", (t(tick),), caught_up=caught_up)


def MISS(*ticks: str) -> Step:
    return Step("miss", tuple(t(tick) for tick in ticks))


def END(reason: str) -> Step:
    return Step("end", reason=reason)


class Plan(NamedTuple):
    name: str
    history: list[Event]
    now: datetime
    active: bool  # the schedule's previous run is still running
    expected: list[Step]
    on_time: float = 60.0


def schedule(history: list[Event]) -> dict[str, Any]:
    doc = fold(apply_schedule, SID, history)
    assert doc is not None
    return doc


def check(row: Plan) -> None:
    doc = schedule(row.history)
    assert plan(doc, timing_of(doc), row.now, row.active, row.on_time) == row.expected


ON_TIME = [
    Plan("before-the-first-tick", [created()], t("08:09:59"), False, []),
    Plan("a-tick-fires-on-time", [created()], t("08:10:00"), False, [FIRE("08:10")]),
    Plan("a-tick-seen-59s-late-is-on-time", [created()], t("08:10:59"), False, [FIRE("08:10")]),
    Plan("a-tick-seen-60s-late-is-still-on-time", [created()], t("08:11:00"), False, [FIRE("08:10")]),
    Plan("a-tick-seen-60.5s-late-was-missed", [created()], t("08:11:00") + timedelta(milliseconds=500), False,
         [FIRE("08:10", caught_up=True)]),
    Plan("a-wider-on-time-window", [created()], t("08:11:01"), False, [FIRE("08:10")], on_time=120),
    Plan("a-fired-tick-is-not-due-again", [created(), fired("08:10")], t("08:10:30"), True, []),
    Plan("two-ticks-due-in-one-pass-allowed-to-overlap", [created("* * * * *", overlap="allow")], t("08:02:10"),
         False, [FIRE("08:01"), FIRE("08:02")], on_time=120),
    Plan("two-ticks-due-in-one-pass-skipping-overlaps", [created("* * * * *")], t("08:02:10"), False,
         [FIRE("08:01"), SKIP("08:02")], on_time=120),
    Plan("ticks-in-the-schedules-time-zone", [created("0 9 * * *", timezone="Europe/Paris")],
         t("08:00:05", DAY + timedelta(days=1)), False, [Step("fire", (t("08:00", DAY + timedelta(days=1)),))]),
    Plan("paused", [created(), SchedulePaused(name="report")], t("08:10:05"), False, []),
    Plan("deleted", [created(), ScheduleDeleted(name="report")], t("08:10:05"), False, []),
    Plan("ended", [created(), ScheduleEnded(reason="no tick is left")], t("08:10:05"), False, []),
    Plan("resumed-ticks-that-fell-while-paused-are-not-due",
         [created(), SchedulePaused(name="report"), ScheduleResumed(name="report", start=s("08:45"))],
         t("08:45:30"), False, []),
    Plan("resumed-the-next-tick-fires", [created(), SchedulePaused(name="report"),
                                         ScheduleResumed(name="report", start=s("08:45"))],
         t("08:50:05"), False, [FIRE("08:50")]),
]  # fmt: skip

OUTAGE = [created(), fired("08:10")]  # then no scheduler until 09:05: 08:20 .. 09:00 were missed
MISSED = ("08:20", "08:30", "08:40", "08:50", "09:00")
CATCH_UP = [
    Plan("none-records-every-missed-tick", [created(catchup="none"), fired("08:10")], t("09:05"), False,
         [MISS(*MISSED)]),
    Plan("latest-fires-the-newest-and-records-the-others", OUTAGE, t("09:05"), False,
         [MISS("08:20", "08:30", "08:40", "08:50"), FIRE("09:00", caught_up=True)]),
    Plan("all-fires-every-one-when-overlap-is-allowed", [created(catchup="all", overlap="allow"), fired("08:10")],
         t("09:05"), False, [FIRE(tick, caught_up=True) for tick in MISSED]),
    Plan("all-fires-the-first-and-queues-the-rest-in-order", [created(catchup="all"), fired("08:10")], t("09:05"),
         False, [FIRE("08:20", caught_up=True), *(QUEUE(tick, caught_up=True) for tick in MISSED[1:])]),
    Plan("all-queues-every-one-behind-an-active-run", [created(catchup="all", overlap="replace"), fired("08:10")],
         t("09:05"), True, [QUEUE(tick, caught_up=True) for tick in MISSED]),
    Plan("latest-with-a-tick-on-time-fires-that-one-and-records-every-missed-one", OUTAGE, t("09:00:10"), False,
         [MISS("08:20", "08:30", "08:40", "08:50"), FIRE("09:00")]),
    Plan("all-with-a-tick-on-time-queues-it-behind-the-missed-ones", [created(catchup="all"), fired("08:10")],
         t("09:00:10"), False, [FIRE("08:20", caught_up=True), *(QUEUE(x, caught_up=True) for x in MISSED[1:4]),
                                QUEUE("09:00")]),
    Plan("all-a-tick-on-time-queues-behind-queued-caught-up-ticks",
         [created(catchup="all"), fired("08:10"), queued("08:20", True)], t("08:30:05"), True, [QUEUE("08:30")]),
    Plan("latest-of-an-outage-while-the-previous-run-is-active", OUTAGE, t("09:05"), True,
         [MISS("08:20", "08:30", "08:40", "08:50"), SKIP("09:00")]),
    Plan("a-missed-at-tick-with-catchup-none", [created(None, at="09:00", catchup="none")], t("09:05"), False,
         [MISS("09:00"), END("the --at tick was handled")]),
]  # fmt: skip

OVERLAP = [
    Plan("skip-while-the-previous-run-is-active", [created(), fired("08:10")], t("08:20:05"), True, [SKIP("08:20")]),
    Plan("skip-fires-once-the-previous-run-ended", [created(), fired("08:10")], t("08:20:05"), False,
         [FIRE("08:20")]),
    Plan("allow-fires-beside-the-active-run", [created(overlap="allow"), fired("08:10")], t("08:20:05"), True,
         [FIRE("08:20")]),
    Plan("queue-waits-behind-the-active-run", [created(overlap="queue"), fired("08:10")], t("08:20:05"), True,
         [QUEUE("08:20")]),
    Plan("replace-fires-cancelling-the-active-run", [created(overlap="replace"), fired("08:10")], t("08:20:05"),
         True, [FIRE("08:20", replace=True)]),
    Plan("replace-with-nothing-active-replaces-nothing", [created(overlap="replace"), fired("08:10")],
         t("08:20:05"), False, [FIRE("08:20")]),
    Plan("a-queued-tick-waits-while-the-run-is-active", [created(overlap="queue"), fired("08:10"), queued("08:20")],
         t("08:20:30"), True, []),
    Plan("a-queued-tick-fires-once-the-run-ended", [created(overlap="queue"), fired("08:10"), queued("08:20")],
         t("08:20:30"), False, [FIRE("08:20")]),
    Plan("a-queued-caught-up-tick-fires-caught-up", [created(catchup="all"), fired("08:10"), queued("08:20", True)],
         t("08:25"), False, [FIRE("08:20", caught_up=True)]),
    Plan("the-next-tick-queues-behind-the-queued-one", [created(overlap="queue"), fired("08:10"), queued("08:20")],
         t("08:30:05"), False, [FIRE("08:20"), QUEUE("08:30")]),
]  # fmt: skip

ENDING = [
    Plan("an-at-schedule-before-its-time", [created(None, at="09:00")], t("08:59:59"), False, []),
    Plan("an-at-schedule-fires-once-and-ends", [created(None, at="09:00")], t("09:00:01"), False,
         [FIRE("09:00"), END("the --at tick was handled")]),
    Plan("a-late-at-tick-is-caught-up-then-ends", [created(None, at="09:00")], t("09:30"), False,
         [FIRE("09:00", caught_up=True), END("the --at tick was handled")]),
    Plan("the-tick-at-end-fires-then-the-schedule-ends", [created(end="08:30"), fired("08:10"), fired("08:20")],
         t("08:30:05"), False, [FIRE("08:30"), END("the next tick is after --end 2026-11-21T08:30:00Z")]),
    Plan("no-tick-after-end-is-due-even-after-an-outage", [created(end="08:30"), fired("08:10")], t("09:05"), False,
         [MISS("08:20"), FIRE("08:30", caught_up=True), END("the next tick is after --end 2026-11-21T08:30:00Z")]),
    Plan("a-tick-falling-on-end-is-still-to-come", [created(end="08:30"), fired("08:10")], t("08:20:05"), False,
         [FIRE("08:20")]),
    Plan("an-end-before-the-next-tick-ends-it-at-once", [created(end="08:15"), fired("08:10")], t("08:12"), True,
         [END("the next tick is after --end 2026-11-21T08:15:00Z")]),
    Plan("a-queued-tick-keeps-an-at-schedule-alive", [created(None, at="09:00", overlap="queue"), queued("09:00")],
         t("09:30"), True, []),
]  # fmt: skip


@pytest.mark.parametrize("row", cases(ON_TIME))
def test_a_tick_is_due_once_its_time_has_come_and_only_while_the_schedule_is_active(row: Plan):
    check(row)


@pytest.mark.parametrize("row", cases(CATCH_UP))
def test_ticks_missed_while_no_scheduler_ran_follow_the_catch_up_policy(row: Plan):
    check(row)


@pytest.mark.parametrize("row", cases(OVERLAP))
def test_a_tick_arriving_while_the_previous_run_is_active_follows_the_overlap_policy(row: Plan):
    check(row)


@pytest.mark.parametrize("row", cases(ENDING))
def test_a_schedule_ends_once_no_tick_is_left(row: Plan):
    check(row)


def test_a_long_outage_is_decided_over_several_passes_a_thousand_ticks_at_a_time():
    """A minutely schedule 1,100 minutes without a scheduler, catch-up ``latest``: a pass records the
    first 1,000 missed, in events of 500, and fires none (the newest due tick is further on); the next
    pass records the rest as missed and fires the one on time, which is the newest."""
    doc = schedule([created("* * * * *", start="00:00:30")])
    ticks = [t("00:01") + timedelta(minutes=n) for n in range(1100)]
    steps = plan(doc, timing_of(doc), ticks[-1] + timedelta(seconds=5), False)
    assert steps == [
        Step("miss", tuple(ticks[:MAX_TICKS_PER_EVENT])),
        Step("miss", tuple(ticks[MAX_TICKS_PER_EVENT:MAX_TICKS_PER_PASS])),
    ]
    after = fold_more(apply_schedule, doc, [ScheduleTicksMissed(tuple(stamp(x) for x in ticks[:MAX_TICKS_PER_PASS]))],
                      after=doc["version"])  # fmt: skip
    again = plan(after, timing_of(after), ticks[-1] + timedelta(seconds=5), False)
    assert again == [
        Step("miss", tuple(ticks[MAX_TICKS_PER_PASS:-1])),
        Step("fire", (ticks[-1],)),  # 5 s old: on time, so the newest due tick and not a caught-up one
    ]


# -- a pass decided, recorded, then decided again at the same time decides nothing more -------------


def recorded_as(step: Step) -> Event:
    """The event the timer appends for ``step`` (ScheduleService does this, with a run)."""
    tick = stamp(step.ticks[0]) if step.ticks else ""
    if step.kind == "fire":
        return ScheduleFired(tick=tick, logical_date=tick, run=f"run-{tick}", caught_up=step.caught_up)
    if step.kind == "skip":
        return ScheduleTickSkipped(tick=tick, logical_date=tick, reason="overlap")
    if step.kind == "queue":
        return ScheduleTickQueued(tick=tick, logical_date=tick, caught_up=step.caught_up)
    if step.kind == "miss":
        return ScheduleTicksMissed(ticks=tuple(stamp(x) for x in step.ticks))
    return ScheduleEnded(reason=step.reason)


@pytest.mark.parametrize("row", cases([*ON_TIME, *CATCH_UP, *OVERLAP, *ENDING]))
def test_a_pass_repeated_at_the_same_time_decides_nothing_more(row: Plan):
    doc = schedule(row.history)
    steps = plan(doc, timing_of(doc), row.now, row.active, row.on_time)
    after = fold_more(apply_schedule, doc, [recorded_as(step) for step in steps], after=doc["version"])
    active = row.active or any(step.kind == "fire" for step in steps)
    assert plan(after, timing_of(after), row.now, active, row.on_time) == []


# -- next_tick: when the timer should wake for the schedule -----------------------------------------


class Next(NamedTuple):
    name: str
    history: list[Event]
    expected: datetime | None


NEXT = [
    Next("the-first-tick-after-creation", [created()], t("08:10")),
    Next("the-tick-after-the-last-fired", [created(), fired("08:10")], t("08:20")),
    Next("the-tick-after-the-last-skipped", [created(), fired("08:10"),
         ScheduleTickSkipped(tick=s("08:20"), logical_date=s("08:20"), reason="overlap")], t("08:30")),
    Next("the-tick-after-the-last-missed", [created(), missed("08:10", "08:20", "08:30")], t("08:40")),
    Next("the-tick-after-the-last-queued", [created(overlap="queue"), fired("08:10"), queued("08:20")], t("08:30")),
    Next("a-daily-in-paris-in-winter", [created("0 9 * * *", timezone="Europe/Paris")],
         t("08:00", DAY + timedelta(days=1))),  # 09:00:30 in Paris when created: tomorrow's 09:00 is next
    Next("an-hourly-after-resume", [created("@hourly"), SchedulePaused(name="report"),
                                    ScheduleResumed(name="report", start=s("10:15"))], t("11:00")),
    Next("an-at-schedule-waiting", [created(None, at="09:00")], t("09:00")),
    Next("an-at-schedule-fired", [created(None, at="09:00"), fired("09:00")], None),
    Next("the-tick-falling-on-end", [created(end="08:30"), fired("08:10"), fired("08:20")], t("08:30")),
    Next("the-next-tick-after-end", [created(end="08:25"), fired("08:10"), fired("08:20")], None),
    Next("paused", [created(), SchedulePaused(name="report")], None),
    Next("ended", [created(), ScheduleEnded(reason="no tick is left")], None),
    Next("deleted", [created(), ScheduleDeleted(name="report")], None),
]  # fmt: skip


@pytest.mark.parametrize("row", cases(NEXT))
def test_the_next_tick_is_the_first_after_the_last_decided_one_while_active(row: Next):
    doc = schedule(row.history)
    assert next_tick(doc, timing_of(doc)) == row.expected
