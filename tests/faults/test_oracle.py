"""The oracle itself: a clean history holds, and each kind of damage planted in the log is named."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from queue_core import Client
from queue_core.eventlog.events import NewEvent, RunCancelled, RunStarted
from queue_core.readmodels import oracle
from queue_core.readmodels.oracle import check_log
from tests.support.workload import definition, mixed_workload, schedule_workload, workflow_workload


def test_a_history_made_through_the_commands_holds(client: Client):
    runs = mixed_workload(client, rounds=2)
    workflow_runs, children = workflow_workload(client)
    schedule_workload(client)
    report = check_log(client.store, [*runs, *workflow_runs, *children])
    assert report.ok, report.problems
    submitted = len(client.events(type="RunSubmitted"))  # the schedules' fires add runs and a workflow run
    assert (report.runs, report.workflow_runs) == (submitted, len(client.events(type="WorkflowRunStarted")))
    assert submitted > len(runs) + len(children)
    unfinished = check_log(client.store, require_terminal=True)
    assert any("never ended" in problem for problem in unfinished.problems)


def _raw_append(client: Client, aggregate: str, event: object, version: int, event_id: str | None = None) -> None:
    """An entry written past the append script, as a bug or a hand would: log and aggregate position list."""
    new = NewEvent(aggregate, event) if event_id is None else NewEvent(aggregate, event, event_id)  # type: ignore[arg-type]
    envelope = orjson.loads(client.store.redis.xrevrange(client.store.keys.log, count=1)[0][1][b"e"])
    envelope.update(id=new.event_id, type=type(event).__name__, agg=aggregate, v=version, d=event)
    payload = orjson.dumps(envelope)
    position = client.store.redis.xadd(client.store.keys.log, {"e": payload, "h": "x"})
    client.store.redis.rpush(client.store.keys.aggregate(aggregate), position)


def _first_of(client: Client, type_name: str) -> str:
    return next(r.aggregate for r in client.store.read() if r.type == type_name)


def _stray_position(client: Client) -> None:
    """A position in a run's own list, older than the run's first, that no log entry of it matches."""
    client.store.redis.lpush(client.store.keys.aggregate(_first_of(client, "RunSucceeded")), "0-1")


def _tick_fired_twice(client: Client) -> None:
    workflow_workload(client)
    schedule_workload(client)
    fired = next(r for r in client.store.read() if r.type == "ScheduleFired")
    _raw_append(client, fired.aggregate, fired.event, client.store.version(fired.aggregate) + 1)


DAMAGE: dict[str, tuple[Callable[[Client], None], str]] = {
    "a schedule tick fired twice": (_tick_fired_twice, "decided twice"),
    "a second end": (
        lambda c: _raw_append(
            c, _first_of(c, "RunSucceeded"), RunCancelled(), c.store.version(_first_of(c, "RunSucceeded")) + 1
        ),
        "ended 2 times",
    ),
    "a version gap": (
        lambda c: _raw_append(
            c, _first_of(c, "RunSubmitted"), RunCancelled(), c.store.version(_first_of(c, "RunSubmitted")) + 2
        ),
        "expected",
    ),
    "an event id twice": (
        lambda c: _raw_append(
            c, "someone", RunCancelled(), 1, next(r.event_id for r in c.store.read() if r.type == "RunSubmitted")
        ),
        "is on the log twice",
    ),
    "an attempt started twice": (
        lambda c: _raw_append(
            c,
            _first_of(c, "RunSucceeded"),
            RunStarted(attempt=1, worker="w", host="h", pid=1),
            c.store.version(_first_of(c, "RunSucceeded")) + 1,
        ),
        "started again",
    ),
    "a read model changed by hand": (
        lambda c: c.store.redis.hset("jobledger:live:rm:runs", _first_of(c, "RunSubmitted"), b'{"tampered": 1}'),
        "read models rebuilt from the log differ",
    ),
    "an aggregate's position list cut short": (
        lambda c: c.store.redis.delete(c.store.keys.aggregate(_first_of(c, "RunSucceeded"))),
        "its position list holds 0 events",
    ),
    "an aggregate position the log lacks": (lambda c: _stray_position(c), "events up to"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_each_kind_of_damage_is_named(client: Client, damage: str):
    mixed_workload(client)
    client.read_models.catch_up()
    plant, named = DAMAGE[damage]
    plant(client)
    report = check_log(client.store)
    assert not report.ok
    assert any(named in problem for problem in report.problems), report.problems


def test_acknowledged_ids_must_be_on_the_log_and_markers_within_the_attempts_started(client: Client):
    runs = mixed_workload(client)
    succeeded = runs[3]
    assert check_log(client.store, acknowledged=["not-a-run"]).problems == ("acknowledged not-a-run is not on the log",)
    twice = check_log(client.store, executions=[f"{succeeded}:1", f"{succeeded}:1", f"{runs[0]}:1"])
    assert sorted(twice.problems) == sorted(
        [f"job code of {succeeded}:1 ran 2 times; 1 attempt(s) of it started",
         f"job code of {runs[0]}:1 ran 1 times; 0 attempt(s) of it started"]
    )  # fmt: skip
    assert check_log(client.store, executions=[f"{succeeded}:1"]).ok


def test_jobledger_check_says_the_log_holds_or_names_the_problems(client: Client, procs):
    mixed_workload(client)
    held = procs.cli("check")
    assert held.returncode == 0 and held.stdout.strip().endswith("the log holds")
    ended = procs.cli("check", "--ended", "--json")
    assert ended.returncode == 1 and orjson.loads(ended.stdout)["ok"] is False


def test_events_appended_while_the_oracle_reads_are_not_counted_against_it(client: Client, monkeypatch):
    runs = mixed_workload(client)
    read_log = oracle.events_after

    def then_the_system_goes_on(store):  # users keep appending to the same aggregates once the log was read
        yield from read_log(store)
        client.cancel(runs[0])
        client.define(definition("keep", "keep.sh", retries=1, delay=0.0, args="v3"))

    monkeypatch.setattr(oracle, "events_after", then_the_system_goes_on)
    report = check_log(client.store)
    assert report.ok, report.problems
