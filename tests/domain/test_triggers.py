"""Pure rules of triggers, backfills and jitter: when a trigger fires, which ticks a backfill runs, tick offsets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from queue_core.domain.backfills import apply_backfill, entries, outcome, plan_ticks, release, tick_run
from queue_core.domain.schedules import fire_time
from queue_core.domain.triggers import FIRE, NOTE, FileSeen, Write, decide_datasets, decide_files
from queue_core.errors import InvalidInput
from queue_core.eventlog.events import BackfillRunSubmitted, BackfillStarted, Recorded
from queue_core.specs.triggers import normalize_trigger

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
A, B = "dataos://wh:dev/a", "dataos://wh:dev/b"


def write(dataset: str, position: int, minutes_ago: float = 0) -> Write:
    when = (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")
    return Write(dataset, f"run-{position}", f"{position}-0", when)


def spec(mode: str = "any", debounce: float = 0) -> dict:
    return {"kind": "datasets", "datasets": [A, B], "mode": mode, "debounce": debounce}


def state(pending: list[Write] = (), cursor: str = "0-0") -> dict:  # type: ignore[assignment]
    return {"cursor": cursor, "pending": [w.to_doc() for w in pending], "seen_files": [], "last_fire": None}


@pytest.mark.parametrize(
    ("mode", "debounce", "pending", "writes", "expected"),
    [
        ("any", 0, [], [write(A, 5)], (FIRE, (A,))),
        ("any", 0, [], [write("dataos://wh:dev/other", 5)], None),
        ("all", 0, [], [write(A, 5)], (NOTE, ())),
        ("all", 0, [write(A, 5)], [write(B, 6)], (FIRE, (A, B))),
        ("all", 0, [write(A, 5)], [write(A, 6)], (NOTE, ())),
        ("all", 0, [write(A, 5)], [], None),  # nothing new: it keeps waiting, nothing appended
        ("any", 10, [], [write(A, 5, minutes_ago=3)], (NOTE, ())),  # not quiet for 10 minutes yet
        ("any", 10, [write(A, 5, minutes_ago=11)], [], (FIRE, (A,))),  # quiet now
        ("any", 10, [write(A, 5, minutes_ago=11)], [write(B, 6, minutes_ago=1)], (NOTE, ())),  # a new write resets it
    ],
)
def test_a_dataset_trigger_fires_on_any_or_all_writes_after_its_debounce(mode, debounce, pending, writes, expected):
    decision = decide_datasets(spec(mode, debounce), state(pending), writes, NOW)
    if expected is None:
        assert decision is None
    else:
        assert (decision.kind, decision.datasets) == expected


def test_writes_at_or_before_the_cursor_are_not_counted_again():
    assert decide_datasets(spec(), state(cursor="9-0"), [write(A, 5)], NOW) is None


def files(*names: str, minutes_ago: float = 10) -> list[FileSeen]:
    return [FileSeen(n, NOW - timedelta(minutes=minutes_ago)) for n in names]


@pytest.mark.parametrize(
    ("seen", "last_fire_ago", "listing", "min_interval", "wait", "expected"),
    [
        ([], None, files("a.csv", "b.csv"), 0, 0, ("a.csv", "b.csv")),
        (["a.csv"], 1, files("a.csv", "b.csv"), 0, 0, ("b.csv",)),
        (["a.csv"], 1, files("a.csv"), 0, 0, None),  # each file fires once
        (["a.csv"], 1, files("a.csv", "b.csv"), 5, 0, None),  # minInterval after the last fire
        (["a.csv"], 6, files("a.csv", "b.csv"), 5, 0, ("b.csv",)),
        ([], None, files("a.csv", minutes_ago=1), 0, 2, None),  # still changing
        ([], None, files("a.csv", minutes_ago=3), 0, 2, ("a.csv",)),
    ],
)
def test_a_files_trigger_fires_once_per_file_after_its_intervals(
    seen, last_fire_ago, listing, min_interval, wait, expected
):
    trigger = {"kind": "files", "files": {}, "minInterval": min_interval, "waitAfterLastChange": wait}
    last = None if last_fire_ago is None else (NOW - timedelta(minutes=last_fire_ago)).isoformat()
    decision = decide_files(trigger, {**state(), "seen_files": seen, "last_fire": last}, listing, NOW)
    assert (decision.files if decision else None) == expected


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"datasets": [A], "files": {"depot": "x"}}, "trigger"),
        ({"datasets": []}, "trigger.datasets"),
        ({"datasets": ["not an address"]}, "trigger.datasets[0]"),
        ({"datasets": [A], "mode": "most"}, "trigger.mode"),
        ({"datasets": [A], "debounce": -1}, "trigger.debounce"),
        ({"files": {"depot": "bad name"}}, "trigger.files.depot"),
        ({"files": {"depot": "d", "prefix": "../up"}}, "trigger.files.prefix"),
        ({"files": {"depot": "d"}, "minInterval": "soon"}, "trigger.minInterval"),
        ({"files": {"depot": "d"}, "every": 1}, "trigger.every"),
    ],
)
def test_a_bad_trigger_is_refused_naming_the_field(raw, field):
    with pytest.raises(InvalidInput) as refused:
        normalize_trigger(raw)
    assert refused.value.field == field


TICKS = ["t1", "t2", "t3", "t4"]


@pytest.mark.parametrize(
    ("reprocess", "backwards", "expected"),
    [
        ("none", False, ["t1", "t4"]),
        ("failed", False, ["t1", "t3", "t4"]),
        ("all", False, TICKS),
        ("failed", True, ["t4", "t3", "t1"]),
    ],
)
def test_a_backfill_leaves_ticks_with_a_run_alone_unless_reprocessed(reprocess, backwards, expected):
    existing = {"t2": "SUCCEEDED", "t3": "FAILED"}
    assert plan_ticks(TICKS, existing, reprocess, backwards)[0] == expected


BACKFILL = "6f1c2b9e-93a4-4c55-8f3e-0a7d1e2b3c4d"


def started(ticks: list[str], max_active: int = 1) -> Recorded:
    event = BackfillStarted(
        schedule="s", schedule_name="s", start="a", end="b", reprocess="none", max_active=max_active,
        backwards=False, ticks=tuple(ticks),
    )  # fmt: skip
    return Recorded("1-0", "e1", "BackfillStarted", BACKFILL, 1, "2026-11-21T08:00:00Z", event)


def submitted(tick: str, version: int, refused: bool = False) -> Recorded:
    run = None if refused else tick_run(BACKFILL, tick, "run")
    event = BackfillRunSubmitted(tick=tick, logical_date=tick, run=run, message="gone" if refused else "")
    return Recorded(
        f"{version}-0", f"e{version}", "BackfillRunSubmitted", BACKFILL, version, "2026-11-21T08:00:00Z", event
    )


def test_a_backfill_releases_up_to_max_active_and_finishes_when_every_run_ended():
    doc = apply_backfill(None, started(TICKS, max_active=2))
    assert release(doc, active=0) == ["t1", "t2"]
    doc = apply_backfill(apply_backfill(doc, submitted("t1", 2)), submitted("t2", 3))
    assert release(doc, active=1) == ["t3"]
    assert release(doc, active=2) == []
    doc = apply_backfill(apply_backfill(doc, submitted("t3", 4)), submitted("t4", 5, refused=True))
    assert [e["run"] for e in entries(doc)] == [tick_run(BACKFILL, t, "run") for t in TICKS[:3]] + [None]
    assert entries(doc)[3]["message"] == "gone"  # refused: it counts as not succeeded
    assert outcome(doc, ["SUCCEEDED", "FAILED", "RUNNING", None]) is None
    assert outcome(doc, ["SUCCEEDED", "FAILED", "SUCCEEDED", None]) == (2, 2)


def copied_by_fold(count: int) -> int:
    """Items a backfill's fold copies over ``count`` submissions: each step's doc keys, and every container in
    the new doc that is not the very one the previous doc held (a fold copying its ticks or its runs copies
    them whole, each step)."""
    ticks = [f"2026-01-01T00:{i // 60 % 60:02}:{i % 60:02}Z#{i}" for i in range(count)]
    doc = apply_backfill(None, started(ticks))
    copied = 0
    for i, tick in enumerate(ticks):
        after = apply_backfill(doc, submitted(tick, i + 2, refused=i % 1000 == 999))
        copied += len(after) + sum(
            len(v) for k, v in after.items() if isinstance(v, list | dict | tuple | set) and v is not doc[k]
        )
        doc = after
    assert doc["submitted"] == count and len(doc["refused"]) == count // 1000
    return copied


def test_a_10000_tick_backfill_folds_with_constant_work_per_event():
    small, large = copied_by_fold(1000), copied_by_fold(10_000)
    assert large <= 40 * 10_000  # a constant per event: the doc's keys, and the rare refusal's few
    assert large / small < 11  # linear from 1,000 to 10,000 ticks; copying the ticks or runs would be 100 times


def test_jitter_offsets_each_tick_the_same_way_every_time_within_its_bound():
    doc = {"id": "schedule-1", "jitter": 5.0}
    ticks = [NOW + timedelta(minutes=10 * i) for i in range(50)]
    offsets = [(fire_time(doc, t) - t).total_seconds() for t in ticks]
    assert offsets == [(fire_time(doc, t) - t).total_seconds() for t in ticks]
    assert all(0 <= o <= 300 for o in offsets) and len(set(offsets)) > 10
    assert fire_time({"id": "schedule-1", "jitter": 0.0}, NOW) == NOW
