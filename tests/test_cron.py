"""Cron expressions: fields, macros, clear errors, and ticks in a time zone across DST changes (tables, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from queue_core import InvalidInput
from queue_core.cron import parse_cron


def ticks(expr: str, zone: str, after: str, until: str, limit: int = 100) -> list[str]:
    cron = parse_cron(expr, zone)
    found = cron.ticks(datetime.fromisoformat(after), datetime.fromisoformat(until), limit)
    return [t.astimezone(cron.zone).isoformat() for t in found]


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("*/20 * * * *", "2026-11-21T08:05:00+00:00", ["08:20", "08:40", "09:00"]),
        ("0 9 * * mon-fri", "2026-11-20T10:00:00+00:00", ["2026-11-23T09:00"]),  # Friday, then Monday
        ("0 9 1,15 * mon", "2026-06-02T00:00:00+00:00", ["2026-06-08T09:00", "2026-06-15T09:00"]),  # either
        ("30 6 */10 * *", "2026-01-01T07:00:00+00:00", ["2026-01-11T06:30", "2026-01-21T06:30"]),
        ("0 0 1 jan,jul *", "2026-02-01T00:00:00+00:00", ["2026-07-01T00:00"]),
        ("@hourly", "2026-11-21T08:00:00+00:00", ["09:00", "10:00"]),
        ("@daily", "2026-11-21T08:00:00+00:00", ["2026-11-22T00:00"]),
        ("@weekly", "2026-11-21T08:00:00+00:00", ["2026-11-22T00:00"]),  # Sunday
        ("@monthly", "2026-11-21T08:00:00+00:00", ["2026-12-01T00:00"]),
        ("@yearly", "2026-11-21T08:00:00+00:00", ["2027-01-01T00:00"]),
        ("0 0 * * 7", "2026-11-21T08:00:00+00:00", ["2026-11-22T00:00"]),  # 7 is Sunday too
        ("0 0 29 2 *", "2026-03-01T00:00:00+00:00", ["2028-02-29T00:00"]),
        ("5/15 * * * *", "2026-11-21T08:00:00+00:00", ["08:05", "08:20", "08:35", "08:50", "09:05"]),
    ],
)
def test_next_ticks_in_utc(expr: str, after: str, expected: list[str]):
    cron = parse_cron(expr)
    tick = datetime.fromisoformat(after)
    found = []
    for want in expected:
        next_tick = cron.next_after(tick)
        assert next_tick is not None
        tick = next_tick
        found.append(tick.strftime("%H:%M") if len(want) == 5 else tick.strftime("%Y-%m-%dT%H:%M"))
    assert found == expected


def test_a_daily_0230_fires_once_on_the_spring_forward_day_an_hour_later():
    # Europe/Paris skips 02:00-03:00 on 2026-03-29: 02:30 is read with the offset before the change.
    assert ticks("30 2 * * *", "Europe/Paris", "2026-03-27T12:00:00+00:00", "2026-03-30T12:00:00+00:00") == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:30:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]


def test_an_hourly_schedule_skips_the_missing_hour_without_firing_twice():
    assert ticks("30 * * * *", "Europe/Paris", "2026-03-29T00:00:00+01:00", "2026-03-29T04:59:00+02:00") == [
        "2026-03-29T00:30:00+01:00",
        "2026-03-29T01:30:00+01:00",
        "2026-03-29T03:30:00+02:00",
        "2026-03-29T04:30:00+02:00",
    ]


def test_a_daily_0230_fires_once_on_the_fall_back_day_at_the_first_0230():
    assert ticks("30 2 * * *", "Europe/Paris", "2026-10-24T12:00:00+00:00", "2026-10-26T12:00:00+00:00") == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]


def test_an_every_hour_schedule_fires_in_both_copies_of_the_repeated_hour():
    assert ticks("*/30 * * * *", "Europe/Paris", "2026-10-25T01:59:00+02:00", "2026-10-25T03:00:00+01:00") == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_new_york_spring_forward_and_fall_back():
    spring = ticks("30 2 * * *", "America/New_York", "2026-03-07T12:00:00+00:00", "2026-03-09T12:00:00+00:00")
    assert spring == ["2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00"]
    fall = ticks("30 1 * * *", "America/New_York", "2026-10-31T12:00:00+00:00", "2026-11-02T12:00:00+00:00")
    assert fall == ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]


def test_a_day_of_hourly_ticks_counts_the_hours_the_day_has():
    paris = parse_cron("0 * * * *", "Europe/Paris")
    # From just before local midnight to just before the next: the short day has 23 hours, the long 25.
    short = paris.ticks(datetime(2026, 3, 28, 22, 59, tzinfo=UTC), datetime(2026, 3, 29, 21, 59, tzinfo=UTC), 100)
    usual = paris.ticks(datetime(2026, 6, 1, 21, 59, tzinfo=UTC), datetime(2026, 6, 2, 21, 59, tzinfo=UTC), 100)
    long = paris.ticks(datetime(2026, 10, 24, 21, 59, tzinfo=UTC), datetime(2026, 10, 25, 22, 59, tzinfo=UTC), 100)
    assert (len(short), len(usual), len(long)) == (23, 24, 25)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("61 * * * *", "minute field: 61 is out of range 0-59"),
        ("* 24 * * *", "hour field: 24 is out of range 0-23"),
        ("* * 0 * *", "day of month field: 0 is out of range 1-31"),
        ("* * * 13 *", "month field: 13 is out of range 1-12"),
        ("* * * * 8", "day of week field: 8 is out of range 0-7"),
        ("* * *", "has 3 fields; cron has five"),
        ("* * * * * *", "has 6 fields"),
        ("@reboot", "is not one of @yearly"),
        ("*/0 * * * *", "step '0' is not a whole number"),
        ("5-1 * * * *", "range '5-1' runs backwards"),
        ("x * * * *", "'x' is not a number"),
        ("* * * foo *", "'foo' is not a number or a name"),
        ("0 0 30 2 *", "never matches a date"),
        ("", "must be five fields"),
    ],
)
def test_a_bad_expression_is_refused_naming_what_is_wrong(expr: str, message: str):
    with pytest.raises(InvalidInput, match=r"^cron: ") as caught:
        parse_cron(expr)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["Mars/Olympus", "../etc/passwd", "", "Europe/"])
def test_an_unknown_time_zone_is_refused(name: str):
    with pytest.raises(InvalidInput, match=r"^timezone: "):
        parse_cron("0 0 * * *", name)


def test_a_tick_decades_away_is_found_exactly():
    # Both day fields restricted, one with a */n: cron requires both. 29 February on a Sunday comes
    # back after 28 years (2032 -> 2060): a fixed scanning window would call it "never".
    expression = parse_cron("0 0 29 2 */7", "UTC")
    assert expression.next_after(datetime(2032, 3, 1, tzinfo=UTC)) == datetime(2060, 2, 29, tzinfo=UTC)


def test_no_tick_after_the_end_of_time_is_none_not_an_error():
    assert parse_cron("* * * * *", "UTC").next_after(datetime(9999, 12, 31, 23, 59, tzinfo=UTC)) is None
    assert parse_cron("0 0 29 2 */7", "Pacific/Pago_Pago").next_after(datetime(9999, 3, 1, tzinfo=UTC)) is None
