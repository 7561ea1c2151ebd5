"""Schedules: each tick fired once, with its logical date; catch-up, overlap, pause, end; time is injected."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

from queue_core import AlreadyExists, Client, InvalidInput, NotFound
from queue_core.domain.schedules import Step
from queue_core.readmodels.materialized import verify
from scheduler.timer import Timer, TimerRegistry, timer_job_id
from tests.support.clock import T0, Clock
from tests.support.jobs import definition, job_file
from tests.support.paths import EXAMPLES
from tests.support.schedules import fired_ticks, fires, new_timer, outcomes, step_minutes


@pytest.fixture
def job(client: Client, workspace: Path) -> str:
    client.define(definition("report", job_file(workspace, "report.sh", 'echo "$@"\n')))
    return "report"


def test_each_cron_tick_fires_one_run_with_its_logical_date_and_args(client: Client, job: str, timer: Timer, clock):
    args = "--day ${logical_date:%Y%m%d} --at ${logical_date}"
    client.create_schedule("every-5", definition=job, cron="*/5 * * * *", args=args, overlap="allow", now=T0)
    step_minutes(timer, clock, 16)
    fired = fires(client, "every-5")
    assert [f["tick"] for f in fired] == [
        "2026-11-21T08:05:00Z",
        "2026-11-21T08:10:00Z",
        "2026-11-21T08:15:00Z",
    ]
    runs = [client.run_detail(f["run"]) for f in fired]
    assert [r["logical_date"] for r in runs] == ["2026-11-21T08:05:00Z", "2026-11-21T08:10:00Z", "2026-11-21T08:15:00Z"]
    assert runs[0]["job"]["args"] == "--day 20261121 --at 2026-11-21T08:05:00Z"
    assert len(client.events(type="RunSubmitted")) == 3
    assert client.list_schedules()[0]["next_fire"] == "2026-11-21T08:20:00Z"


def test_a_pass_repeated_at_the_same_time_fires_nothing_more(client: Client, job: str, timer: Timer, clock):
    client.create_schedule("hourly", definition=job, cron="@hourly", now=T0)
    clock.now = datetime(2026, 11, 21, 9, 0, 0, 200000, tzinfo=UTC)
    for _ in range(3):
        timer.run_pass()
    assert len(client.events(type="ScheduleFired")) == 1
    assert len(client.events(type="RunSubmitted")) == 1


def test_the_logical_date_is_the_tick_in_the_schedules_time_zone(client: Client, job: str, timer: Timer, clock):
    client.create_schedule("paris", definition=job, cron="0 9 * * *", timezone="Europe/Paris", now=T0)
    clock.now = datetime(2026, 11, 22, 8, 0, 1, tzinfo=UTC)  # 09:00 in Paris
    timer.run_pass()
    (fired,) = fires(client, "paris")
    assert client.get_run(fired["run"])["logical_date"] == "2026-11-22T09:00:00+01:00"


def nightly_0230_in_paris(client: Client, job: str, clock: Clock, start: datetime, until: datetime) -> list[str]:
    """The logical dates a daily 02:30 Europe/Paris schedule fires with from ``start`` to ``until``."""
    clock.now = start
    timer = new_timer(client, clock, reconcile=False)
    client.create_schedule(
        "nightly", definition=job, cron="30 2 * * *", timezone="Europe/Paris", overlap="allow", now=start
    )
    while clock.now < until:
        clock.advance(minutes=5)
        timer.run_pass()
    return [client.get_run(f["run"])["logical_date"] for f in fires(client, "nightly")]


def test_a_daily_0230_fires_once_across_the_spring_forward_day(client: Client, job: str, clock: Clock):
    logical = nightly_0230_in_paris(
        client, job, clock, datetime(2026, 3, 27, 12, 0, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC)
    )
    assert logical == ["2026-03-28T02:30:00+01:00", "2026-03-29T03:30:00+02:00", "2026-03-30T02:30:00+02:00"]


def test_a_daily_0230_fires_once_across_the_fall_back_day(client: Client, job: str, clock: Clock):
    logical = nightly_0230_in_paris(
        client, job, clock, datetime(2026, 10, 24, 12, 0, tzinfo=UTC), datetime(2026, 10, 27, tzinfo=UTC)
    )
    assert logical == ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]


def test_an_at_schedule_fires_once_and_then_ends(client: Client, job: str, timer: Timer, clock: Clock):
    created = client.create_schedule("once", definition=job, at="2026-11-21T09:00:00Z", now=T0)
    assert created["next_fire"] == "2026-11-21T09:00:00Z"
    clock.now = datetime(2026, 11, 21, 9, 0, 0, 100000, tzinfo=UTC)
    timer.run_pass()
    clock.advance(hours=5)
    timer.run_pass()
    schedule = client.get_schedule("once")
    assert (schedule["status"], schedule["fired"], schedule["next_fire"]) == ("ENDED", 1, None)
    assert client.get_run(schedule["last_run"]["id"])["logical_date"] == "2026-11-21T09:00:00Z"
    assert timer_job_id(schedule["id"]) not in {timer_job_id(s) for s in timer.registry.entries()}


def test_an_at_time_without_an_offset_is_read_in_the_schedules_time_zone(client: Client, job: str):
    created = client.create_schedule("local", definition=job, at="2026-11-21T10:00", timezone="Europe/Paris", now=T0)
    assert created["at"] == "2026-11-21T09:00:00Z"


def test_end_stops_a_periodic_schedule_after_that_time(client: Client, job: str, timer: Timer, clock: Clock):
    client.create_schedule(
        "until", definition=job, cron="*/10 * * * *", end="2026-11-21T08:30:00Z", overlap="allow", now=T0
    )
    step_minutes(timer, clock, 60)
    assert [f["tick"][11:16] for f in fires(client, "until")] == ["08:10", "08:20", "08:30"]
    schedule = client.get_schedule("until")
    assert schedule["status"] == "ENDED"
    assert "--end" in schedule["ended_reason"]


# -- catch-up after an outage --------------------------------------------------------------------


def outage(client: Client, job: str, clock: Clock, catchup: str, overlap: str = "allow") -> Timer:
    """A 10-minute schedule; the scheduler runs one tick, stops for 5 periods, then comes back."""
    client.create_schedule("backfill", definition=job, cron="*/10 * * * *", catchup=catchup, overlap=overlap, now=T0)
    timer = new_timer(client, clock, reconcile=False)
    clock.now = datetime(2026, 11, 21, 8, 10, 1, tzinfo=UTC)
    timer.run_pass()
    clock.now = datetime(2026, 11, 21, 9, 5, tzinfo=UTC)  # 08:20 .. 09:00 passed with no scheduler
    restarted = new_timer(client, clock)
    restarted.run_pass()
    return restarted


def test_catchup_all_fires_every_missed_tick_in_order(client: Client, job: str, clock: Clock):
    outage(client, job, clock, "all")
    assert outcomes(client, "backfill") == [
        ("08:10", "fired"),
        ("08:20", "fired"),
        ("08:30", "fired"),
        ("08:40", "fired"),
        ("08:50", "fired"),
        ("09:00", "fired"),
    ]
    caught = [f["reason"] for f in fires(client, "backfill")]
    assert caught == [None, "caught up", "caught up", "caught up", "caught up", "caught up"]
    dates = [r["logical_date"] for r in client.list_runs(definition=job)]
    assert dates == sorted(dates, reverse=True)  # submitted in tick order: newest first in the list


def test_catchup_latest_fires_only_the_newest_missed_tick(client: Client, job: str, clock: Clock):
    outage(client, job, clock, "latest")
    assert outcomes(client, "backfill") == [
        ("08:10", "fired"),
        ("08:20", "missed"),
        ("08:30", "missed"),
        ("08:40", "missed"),
        ("08:50", "missed"),
        ("09:00", "fired"),
    ]
    assert client.get_schedule("backfill")["missed"] == 4


def test_catchup_none_fires_no_missed_tick_but_records_them(client: Client, job: str, clock: Clock):
    timer = outage(client, job, clock, "none")
    assert [o for o in outcomes(client, "backfill") if o[1] == "missed"] == [
        ("08:20", "missed"),
        ("08:30", "missed"),
        ("08:40", "missed"),
        ("08:50", "missed"),
        ("09:00", "missed"),
    ]
    assert len(fires(client, "backfill")) == 1
    clock.now = datetime(2026, 11, 21, 9, 10, 2, tzinfo=UTC)
    timer.run_pass()  # the next tick on time fires as usual
    assert fires(client, "backfill")[-1]["tick"] == "2026-11-21T09:10:00Z"


def test_catchup_all_with_skip_runs_the_missed_ticks_one_after_another(client: Client, job: str, clock: Clock):
    timer = outage(client, job, clock, "all", overlap="skip")
    # The 08:10 run never ran (no workers): 08:20 .. 09:00 wait behind it, in order.
    schedule = client.get_schedule("backfill")
    assert [q["tick"][11:16] for q in schedule["queued"]] == ["08:20", "08:30", "08:40", "08:50", "09:00"]
    for expected in ["08:20", "08:30", "08:40", "08:50", "09:00"]:
        client.cancel(client.get_schedule("backfill")["last_run"]["id"])  # the previous run ends
        clock.advance(seconds=1)
        timer.run_pass()
        assert fires(client, "backfill")[-1]["tick"][11:16] == expected
    assert client.get_schedule("backfill")["queued"] == []


# -- overlap: the previous run is still active at the next tick -----------------------------------


def two_ticks(client: Client, job: str, timer: Timer, clock: Clock, overlap: str) -> list[dict]:
    """A 10-minute schedule over two ticks while no worker runs anything: the first run stays PENDING."""
    client.create_schedule("overlapping", definition=job, cron="*/10 * * * *", overlap=overlap, now=T0)
    step_minutes(timer, clock, 20)  # ticks 08:10 and 08:20
    return client.get_schedule("overlapping", history=100)["history"]


def test_overlap_skip_records_a_skipped_tick(client: Client, job: str, timer: Timer, clock: Clock):
    history = two_ticks(client, job, timer, clock, "skip")
    first = fires(client, "overlapping")[0]["run"]
    assert [(e["tick"][11:16], e["outcome"], e["run"]) for e in reversed(history) if e["tick"]] == [
        ("08:10", "fired", first),
        ("08:20", "skipped", first),
    ]
    assert history[0]["reason"] == "overlap"


def test_overlap_allow_starts_another_run(client: Client, job: str, timer: Timer, clock: Clock):
    two_ticks(client, job, timer, clock, "allow")
    runs = [f["run"] for f in fires(client, "overlapping")]
    assert [client.get_run(r)["status"] for r in runs] == ["PENDING", "PENDING"]


def test_overlap_queue_starts_the_tick_when_the_previous_run_ends(client: Client, job: str, timer: Timer, clock):
    two_ticks(client, job, timer, clock, "queue")
    assert outcomes(client, "overlapping") == [("08:10", "fired"), ("08:20", "queued")]
    timer.run_pass()
    assert len(fires(client, "overlapping")) == 1  # still waiting
    client.cancel(fires(client, "overlapping")[0]["run"])
    clock.advance(seconds=1)
    timer.run_pass()
    assert outcomes(client, "overlapping") == [("08:10", "fired"), ("08:20", "fired")]
    run = client.get_run(fires(client, "overlapping")[1]["run"])
    assert run["logical_date"] == "2026-11-21T08:20:00Z"  # the tick it stands for, not when it started


def test_overlap_replace_cancels_the_previous_run_and_starts_the_new_one(client: Client, job: str, timer, clock):
    two_ticks(client, job, timer, clock, "replace")
    first, second = fires(client, "overlapping")
    assert client.get_run(first["run"])["status"] == "CANCELLED"
    assert client.get_run(second["run"])["status"] == "PENDING"
    assert second["replaced"] == first["run"]


# -- pause, resume, delete -----------------------------------------------------------------------


def test_pause_stops_firing_and_resume_fires_from_then_on(client: Client, job: str, timer: Timer, clock: Clock):
    client.create_schedule("pausable", definition=job, cron="*/10 * * * *", overlap="allow", now=T0)
    step_minutes(timer, clock, 10)  # 08:10 fires
    assert client.pause_schedule("pausable")["status"] == "PAUSED"
    assert client.pause_schedule("pausable")["status"] == "PAUSED"  # again: nothing changes
    step_minutes(timer, clock, 30)  # 08:20, 08:30, 08:40 fall while paused
    assert client.list_schedules()[0]["next_fire"] is None
    resumed = client.resume_schedule("pausable", now=clock.now)
    assert resumed["next_fire"] == "2026-11-21T08:50:00Z"
    step_minutes(timer, clock, 10)
    assert [f["tick"][11:16] for f in fires(client, "pausable")] == ["08:10", "08:50"]
    assert client.get_schedule("pausable")["missed"] == 0  # paused ticks are not missed ticks


def test_delete_frees_the_name_and_removes_the_timer(client: Client, job: str, timer: Timer, clock: Clock):
    created = client.create_schedule("temp", definition=job, cron="@hourly", now=T0)
    timer.run_pass()
    assert created["id"] in timer.registry.entries()
    client.delete_schedule("temp")
    timer.run_pass()
    assert created["id"] not in timer.registry.entries()
    clock.advance(hours=3)
    timer.run_pass()
    assert client.events(type="ScheduleFired") == []
    with pytest.raises(NotFound):
        client.get_schedule("temp")
    assert client.get_schedule(created["id"])["status"] == "DELETED"  # its history stays, by id
    assert client.create_schedule("temp", definition=job, cron="@daily", now=T0)["id"] != created["id"]


def test_a_second_schedule_of_the_same_name_is_refused(client: Client, job: str):
    client.create_schedule("dup", definition=job, cron="@daily", now=T0)
    before = len(client.events())
    with pytest.raises(AlreadyExists, match="schedule 'dup' already exists"):
        client.create_schedule("dup", definition=job, cron="@hourly", now=T0)
    assert len(client.events()) == before


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"cron": "61 * * * *"}, InvalidInput, "cron: '61 \\* \\* \\* \\*': minute field: 61 is out of range"),
        ({"cron": "@reboot"}, InvalidInput, "cron: '@reboot' is not one of"),
        ({"cron": "0 0 * * *", "timezone": "Mars/Olympus"}, InvalidInput, "timezone: unknown time zone"),
        ({"cron": "0 0 * * *", "catchup": "some"}, InvalidInput, "catchup: 'some' is not one of all, latest, none"),
        ({"cron": "0 0 * * *", "overlap": "merge"}, InvalidInput, "overlap: 'merge' is not one of"),
        ({"at": "2026-11-21T08:00:00Z"}, InvalidInput, "at: .* is in the past"),
        ({"at": "tomorrow"}, InvalidInput, "at: 'tomorrow' is not an ISO 8601 time"),
        ({"cron": "0 0 * * *", "at": "2026-12-01T00:00:00Z"}, InvalidInput, "exactly one of cron and at"),
        ({}, InvalidInput, "exactly one of cron and at"),
        ({"cron": "0 0 * * *", "end": "2026-11-21T08:00:00Z"}, InvalidInput, "would never fire"),
        ({"cron": "0 0 * * *", "definition": "nope"}, NotFound, "no definition named 'nope'"),
        ({"cron": "0 0 * * *", "cluster": "nowhere"}, NotFound, "no cluster named 'nowhere'"),
        ({"cron": "0 0 * * *", "args": "'unclosed"}, InvalidInput, "args: cannot be split"),
        ({"cron": "0 0 * * *", "definition": None}, InvalidInput, "exactly one of definition and workflow"),
    ],
)
def test_bad_input_is_refused_with_one_line_and_nothing_appended(
    client: Client, job: str, kwargs: dict, error: type, message: str
):
    before = len(client.events())
    arguments = {"definition": job, **kwargs}
    with pytest.raises(error, match=message) as caught:
        client.create_schedule("bad", **arguments, now=T0)
    assert "\n" not in str(caught.value)
    assert len(client.events()) == before


def test_a_definition_deleted_later_makes_its_ticks_skipped_with_the_reason(
    client: Client, job: str, timer: Timer, clock: Clock
):
    client.create_schedule("orphan", definition=job, cron="*/10 * * * *", now=T0)
    client.delete_definition(job)
    step_minutes(timer, clock, 10)
    (entry,) = client.get_schedule("orphan")["history"][:1]
    assert (entry["outcome"], entry["reason"]) == ("skipped", f"error: no definition named {job!r}")
    assert client.events(type="RunSubmitted") == []


# -- exactly once: retries, racing timers, a wiped registry --------------------------------------


def test_a_retried_fire_is_recorded_once(client: Client, job: str, timer: Timer, clock: Clock):
    """The fire's batch is derived from (schedule, tick): appending it again, as a retry after a lost
    reply does, is a DUP; the run is the same run."""
    created = client.create_schedule("retry", definition=job, cron="*/10 * * * *", now=T0)
    doc = client.schedules.load(created["id"])
    tick = datetime(2026, 11, 21, 8, 10, tzinfo=UTC)
    service = client.schedules
    batch, expected = service._fire(doc, "2026-11-21T08:10:00Z", "2026-11-21T08:10:00Z", Step("fire", (tick,)))
    again, _ = service._fire(doc, "2026-11-21T08:10:00Z", "2026-11-21T08:10:00Z", Step("fire", (tick,)))
    assert [n.event_id for n in batch] == [n.event_id for n in again]
    first = client.store.append(batch, expected)
    second = client.store.append(again, expected)
    assert [r.position for r in first] == [r.position for r in second]
    assert len(client.events(type="ScheduleFired")) == len(client.events(type="RunSubmitted")) == 1


def test_two_timers_racing_over_a_burst_of_ticks_fire_each_tick_once(client: Client, job: str, settings):
    start = datetime(2026, 11, 21, 8, 0, 30, tzinfo=UTC)
    for i in range(10):
        client.create_schedule(f"burst-{i}", definition=job, cron="* * * * *", overlap="allow", now=start)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def race(offset: float) -> None:
        try:
            own = Client(settings=settings)
            clock = Clock(start + timedelta(seconds=offset))
            timer = new_timer(own, clock)
            barrier.wait()
            for _ in range(30 * 6):  # 30 minutes in 10-second passes
                clock.advance(seconds=10)
                timer.run_pass()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=race, args=(offset,)) for offset in (0.0, 0.3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    fired = fired_ticks(client)
    assert sum(fired.values()) == 10 * 30
    assert set(fired.values()) == {1}
    assert len(client.events(type="RunSubmitted")) == 10 * 30
    assert verify(client.store).identical


def test_a_wiped_registry_is_rebuilt_from_the_log_and_no_tick_is_lost_or_doubled(
    client: Client, job: str, clock: Clock, connection: redis.Redis
):
    ids = [
        client.create_schedule(f"s{i}", definition=job, cron="*/10 * * * *", overlap="allow", now=T0)["id"]
        for i in range(5)
    ]
    client.pause_schedule("s4")
    timer = new_timer(client, clock)
    assert set(timer.registry.entries()) == set(ids[:4])
    step_minutes(timer, clock, 10)  # 08:10 fires for s0..s3
    keys = [TimerRegistry.scheduled_jobs_key, *[f"rq:job:{timer_job_id(i)}" for i in ids]]
    assert connection.delete(*keys) >= 5
    restarted = new_timer(client, clock)
    assert set(restarted.registry.entries()) == set(ids[:4])
    assert all(connection.exists(f"rq:job:{timer_job_id(i)}") for i in ids[:4])
    step_minutes(restarted, clock, 10)  # 08:20
    for i in range(4):
        assert [f["tick"][11:16] for f in fires(client, f"s{i}")] == ["08:10", "08:20"]
    assert fires(client, "s4") == []


def test_replay_of_schedule_history_gives_the_same_read_models(client: Client, job: str, timer: Timer, clock):
    client.create_schedule("a", definition=job, cron="*/10 * * * *", overlap="queue", catchup="all", now=T0)
    client.create_schedule("b", definition=job, at="2026-11-21T08:15:00Z", now=T0)
    step_minutes(timer, clock, 30)
    client.pause_schedule("a")
    client.delete_schedule("b")
    result = verify(client.store)
    assert (result.identical, result.difference) == (True, None)


def test_the_example_scheduled_job_is_created_and_fires_as_its_readme_says(client: Client, timer: Timer, clock: Clock):
    client.define_file(EXAMPLES / "schedules" / "daily-report.json")
    readme = (EXAMPLES / "schedules" / "README.md").read_text()
    assert "--args='--day ${logical_date:%Y%m%d}'" in readme
    client.create_schedule(
        "daily-report", definition="daily-report", cron="30 2 * * *", timezone="Europe/Paris",
        catchup="all", overlap="queue", args="--day ${logical_date:%Y%m%d}", now=T0,
    )  # fmt: skip
    clock.now = datetime(2026, 11, 22, 1, 30, 5, tzinfo=UTC)  # 02:30 in Paris
    timer.run_pass()
    (fired,) = fires(client, "daily-report")
    run = client.run_detail(fired["run"])
    assert (run["logical_date"], run["job"]["args"]) == ("2026-11-22T02:30:00+01:00", "--day 20261122")


def test_a_slow_pass_deciding_from_a_stale_read_fires_nothing_twice(client: Client, job: str, timer: Timer, clock):
    """A pass that read the schedule before another timer fired its tick (a pass slower than the tick)."""
    created = client.create_schedule("stale", definition=job, cron="*/10 * * * *", now=T0)
    stale = client.schedules.load(created["id"])
    assert stale is not None
    clock.now = datetime(2026, 11, 21, 8, 10, 1, tzinfo=UTC)
    timer.run_pass()
    after = client.schedules.advance(stale, clock.now + timedelta(seconds=20))
    assert after["fired"] == 1
    assert len(client.events(type="ScheduleFired")) == len(client.events(type="RunSubmitted")) == 1


def test_a_crash_between_the_fire_and_the_re_arm_loses_and_doubles_no_tick(client: Client, job: str, timer, clock):
    created = client.create_schedule("crashy", definition=job, cron="*/10 * * * *", overlap="allow", now=T0)
    timer.run_pass()
    clock.now = datetime(2026, 11, 21, 8, 10, 1, tzinfo=UTC)
    doc = client.schedules.load(created["id"])
    assert doc is not None
    client.schedules.advance(doc, clock.now)  # fired; the timer died before it re-armed the wake-up
    assert timer.registry.entries()[created["id"]] == datetime(2026, 11, 21, 8, 10, tzinfo=UTC).timestamp()
    timer.run_pass()  # the old wake-up is due: nothing is left to fire; it is re-armed at the next tick
    assert timer.registry.entries()[created["id"]] == datetime(2026, 11, 21, 8, 20, tzinfo=UTC).timestamp()
    step_minutes(timer, clock, 10)
    assert [f["tick"][11:16] for f in fires(client, "crashy")] == ["08:10", "08:20"]


def test_a_definition_revised_between_two_advances_is_fired_as_revised(client: Client, job: str, clock: Clock):
    """The per-pass definition cache lives only within a timer pass: the Client's schedule service, used
    outside one, sees each revision."""
    created = client.create_schedule("revised", definition=job, cron="*/10 * * * *", overlap="allow", now=T0)
    first = client.schedules.load(created["id"])
    assert first is not None
    client.schedules.advance(first, datetime(2026, 11, 21, 8, 10, 1, tzinfo=UTC))
    revised = {**client.get_definition(job)["versions"][-1]["spec"], "name": job}
    revised["config"] = {**revised["config"], "args": "--revised"}
    assert client.define(revised).version == 2
    second = client.schedules.load(created["id"])
    assert second is not None
    client.schedules.advance(second, datetime(2026, 11, 21, 8, 20, 1, tzinfo=UTC))
    runs = [client.run_detail(f["run"]) for f in fires(client, "revised")]
    assert [(r["definition_version"], r["job"]["args"]) for r in runs] == [(1, ""), (2, "--revised")]
