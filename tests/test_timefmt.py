"""One way to write and read times: ``Z`` for UTC, fixed width on the log, the own offset for logical dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from queue_core.timefmt import format_time, format_utc, parse_time, parse_utc

PARIS = timezone(timedelta(hours=1))
MOMENTS = [
    datetime(2026, 11, 21, 8, 0, tzinfo=UTC),
    datetime(2026, 11, 21, 8, 0, 5, 123456, tzinfo=UTC),
    datetime(2026, 11, 21, 9, 0, 5, 999999, tzinfo=PARIS),
]


@pytest.mark.parametrize("moment", MOMENTS)
def test_the_formats_are_the_ones_on_the_log(moment: datetime):
    # What the log's envelope times, retry times and output lines were written as before this module.
    assert format_utc(moment) == moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    # What schedule stamps were written as: to the second, cut rather than rounded.
    assert format_utc(moment, "seconds") == (
        moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    )
    # What logical dates were written as: their own offset.
    assert format_time(moment) == moment.isoformat().replace("+00:00", "Z")
    assert parse_utc(format_utc(moment)) == moment and parse_utc(format_utc(moment)).tzinfo is UTC
    assert parse_time(format_time(moment)) == moment


def test_examples_of_each_format():
    moment = datetime(2026, 11, 21, 9, 30, 1, 250000, tzinfo=PARIS)
    assert format_utc(moment) == "2026-11-21T08:30:01.250000Z"
    assert format_utc(moment, "seconds") == "2026-11-21T08:30:01Z"
    assert format_time(moment) == "2026-11-21T09:30:01.250000+01:00"
    assert format_time(moment.replace(microsecond=0, tzinfo=UTC)) == "2026-11-21T09:30:01Z"


def test_parsing_reads_z_in_either_case_and_a_naive_time_as_utc_only_when_asked():
    assert parse_utc(" 2026-11-21T08:00:00z ") == datetime(2026, 11, 21, 8, tzinfo=UTC)
    assert parse_time("2026-11-21T08:00:00").tzinfo is None
    assert parse_utc("2026-11-21T08:00:00") == datetime(2026, 11, 21, 8, tzinfo=UTC)
    assert parse_time("2026-11-21T09:00:00+01:00").utcoffset() == timedelta(hours=1)
    with pytest.raises(ValueError):
        parse_time("yesterday")
