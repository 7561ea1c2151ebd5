"""Definition diffs and run timelines: tables of cases over plain data."""

from __future__ import annotations

from datetime import UTC, datetime

from queue_core.eventlog.events import (
    Event,
    Recorded,
    RunAttemptFailed,
    RunQueued,
    RunRetryScheduled,
    RunStarted,
    RunSucceeded,
)
from queue_core.readmodels.history import Change, diff_specs, timeline
from tests.support.events import recorded


def test_a_diff_names_added_removed_and_changed_fields_by_path():
    old = {"config": {"args": "a", "envVars": {"A": "1", "B": "2"}, "timeout": 60.0}, "description": "x"}
    new = {"config": {"args": "b", "envVars": {"A": "1", "C": "3"}, "timeout": 60.0}, "description": "x"}
    assert diff_specs(old, new) == [
        Change("changed", "config.args", "a", "b"),
        Change("removed", "config.envVars.B", old="2"),
        Change("added", "config.envVars.C", new="3"),
    ]
    assert diff_specs(old, old) == []


def test_emptying_a_mapping_is_a_change_of_the_mapping():
    assert diff_specs({"env": {"A": "1"}}, {"env": {}}) == [
        Change("added", "env", new={}),
        Change("removed", "env.A", old="1"),
    ]


START = datetime.fromtimestamp(1_800_000_000, UTC)


def _recs(*timed: tuple[float, Event]) -> list[Recorded]:
    """A run's events, each ``(seconds after START, event)``."""
    return recorded("run", timed, at=START)


def test_a_timeline_splits_a_retried_run_into_its_phases():
    from queue_core.eventlog.events import RunSubmitted

    submitted = RunSubmitted("d", "def", 1, "default", {})
    events = _recs(
        (0, submitted),
        (1, RunQueued(1, "j")),
        (4, RunStarted(1, "w", "h", 1)),
        (6, RunAttemptFailed(1, "NonZeroExitCode", 1)),
        (6, RunRetryScheduled(2, "x")),
        (16, RunStarted(2, "w", "h", 1)),
        (17.5, RunSucceeded(2)),
    )
    phases = [(p.phase, p.attempt, p.seconds) for p in timeline(events)]
    assert phases == [
        ("recently submitted", 1, 1.0),
        ("in queue", 1, 3.0),
        ("running", 1, 2.0),
        ("waiting to retry", 2, 10.0),
        ("running", 2, 1.5),
    ]


def test_an_unfinished_run_is_timed_up_to_now():
    from queue_core.eventlog.events import RunSubmitted

    events = _recs((0, RunSubmitted("d", "def", 1, "default", {})), (2, RunQueued(1, "j")))
    now = datetime.fromtimestamp(1_800_000_000 + 12, UTC)
    last = timeline(events, now=now)[-1]
    assert (last.phase, last.ended_at, last.seconds) == ("in queue", None, 10.0)
