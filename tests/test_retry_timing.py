"""A retry is never moved to its queue before its ``not_before``: rq-scheduler's whole seconds round up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis

from scheduler.rq_jobs import schedule_attempt, scheduler_for, whole_second_after


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (datetime(2026, 12, 6, 9, 0, 10, 700_000, tzinfo=UTC), datetime(2026, 12, 6, 9, 0, 11, tzinfo=UTC)),
        (datetime(2026, 12, 6, 9, 0, 10, 1, tzinfo=UTC), datetime(2026, 12, 6, 9, 0, 11, tzinfo=UTC)),
        (datetime(2026, 12, 6, 9, 0, 10, tzinfo=UTC), datetime(2026, 12, 6, 9, 0, 10, tzinfo=UTC)),
        (datetime(2026, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
    ],
)
def test_a_fraction_of_a_second_rounds_up_never_down(when: datetime, expected: datetime):
    assert whole_second_after(when) == expected


def test_a_retry_due_within_a_second_is_not_moved_before_it_is_due(redis_url: str):
    connection = redis.Redis.from_url(redis_url)
    due = (datetime.now(UTC) + timedelta(seconds=30)).replace(microsecond=700_000)
    schedule_attempt(connection, "default", "run-1", 2, due)
    scheduler = scheduler_for(connection)
    score = connection.zscore(scheduler.scheduled_jobs_key, "run-1-2")
    assert score is not None and score >= due.timestamp()
    # What rq-scheduler would move at the whole second the retry falls in: nothing yet.
    assert list(scheduler.get_jobs(int(due.timestamp()))) == []
    assert [job.id for job in scheduler.get_jobs(int(due.timestamp()) + 1)] == ["run-1-2"]
