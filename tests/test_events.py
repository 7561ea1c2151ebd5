"""The event envelope: typed events round-trip, and old schema versions are upcast on read."""

from __future__ import annotations

import orjson
import pytest

from queue_core.eventlog import events
from queue_core.eventlog.events import NewEvent, RunAttemptFailed, RunFailed, RunRetryScheduled, decode, encode


def test_an_event_round_trips_through_its_envelope():
    new = NewEvent("run-1", RunFailed(attempt=2, reason="Timeout", exit_code=None, message="late"))
    rec = decode("1-0", encode(new, 7, "2026-11-21T08:00:00.000000Z"))
    assert (rec.position, rec.event_id, rec.type, rec.aggregate, rec.version) == (
        "1-0",
        new.event_id,
        "RunFailed",
        "run-1",
        7,
    )
    assert rec.event == new.event
    assert rec.to_json_dict()["data"] == {
        "attempt": 2,
        "reason": "Timeout",
        "exit_code": None,
        "message": "late",
        "rule": None,
    }


def test_an_old_schema_version_is_upcast_when_read(monkeypatch: pytest.MonkeyPatch):
    # Version 1 of RunAttemptFailed called the reason "why"; version 2 renamed it.
    old = {"id": "e1", "type": "RunAttemptFailed", "agg": "run-1", "v": 3, "t": "2026-11-21T08:00:00Z", "sv": 1,
           "d": {"attempt": 1, "why": "WorkerLost"}}  # fmt: skip
    monkeypatch.setattr(RunAttemptFailed, "schema_version", 2)
    monkeypatch.setattr(events, "_UPCASTERS", {})
    events.register_upcaster("RunAttemptFailed", 1, lambda d: {"attempt": d["attempt"], "reason": d["why"]})
    rec = decode("5-0", orjson.dumps(old))
    assert rec.event == RunAttemptFailed(attempt=1, reason="WorkerLost")


def test_events_are_frozen():
    event = RunAttemptFailed(attempt=1, reason="Timeout")
    with pytest.raises(AttributeError):
        event.reason = "other"  # type: ignore[misc]


def test_a_log_written_with_the_old_run_started_schema_replays_to_the_same_state_as_the_new(connection):
    """RunStarted schema 1 had no source_revision; read through its upcaster it folds like schema 2."""
    from queue_core.eventlog.events import RunQueued, RunStarted, RunSubmitted, RunSucceeded
    from queue_core.eventlog.store import EventStore
    from queue_core.readmodels.projections import fold

    def history(run_id: str) -> list[NewEvent]:
        return [
            NewEvent(run_id, RunSubmitted("d", "def", 1, "default", {"retryStrategy": {}})),
            NewEvent(run_id, RunQueued(1, f"{run_id}-1")),
            NewEvent(run_id, RunStarted(1, "w", "h", 7)),
            NewEvent(run_id, RunSucceeded(1)),
        ]

    store = EventStore(connection)
    for version, new in enumerate(history("new-run"), start=1):
        store.append([new], {"new-run": version - 1})
    old_log = []
    for position, envelope_bytes, _chain in store.read_chain():
        envelope = orjson.loads(envelope_bytes)
        if envelope["type"] == "RunStarted":
            envelope["sv"] = 1
            del envelope["d"]["source_revision"]  # exactly what a schema-1 writer stored
        old_log.append((position, orjson.dumps(envelope)))
    new_state = fold({}, store.read())
    old_state = fold({}, [decode(position, envelope) for position, envelope in old_log])
    assert old_state == new_state
    assert old_state["runs"]["new-run"]["status"] == "SUCCEEDED"


def test_a_schema_1_run_succeeded_reads_as_a_success_with_no_result():
    """RunSucceeded schema 2 added ``result`` (a SQL run's rows, columns, preview); schema 1 had none."""
    from queue_core.eventlog.events import RunSucceeded

    envelope = orjson.loads(encode(NewEvent("run-1", RunSucceeded(attempt=1, result={"outputs": []})), 3, "t"))
    envelope["sv"] = 1
    del envelope["d"]["result"]  # exactly what a schema-1 writer stored
    assert decode("1-0", orjson.dumps(envelope)).event == RunSucceeded(attempt=1, result=None)


def test_a_schema_1_run_submitted_reads_as_a_run_with_no_logical_date_and_no_workflow():
    """RunSubmitted schema 2 added ``logical_date``, ``workflow_run`` and ``task``; schema 1 had none."""
    from queue_core.eventlog.events import RunSubmitted

    new = RunSubmitted(definition_id="d", definition="x", definition_version=1, cluster="default", job={})
    envelope = orjson.loads(encode(NewEvent("run-1", new), 1, "t"))
    envelope["sv"] = 1
    for key in ("logical_date", "workflow_run", "task"):
        del envelope["d"][key]  # exactly what a schema-1 writer stored
    assert decode("1-0", orjson.dumps(envelope)).event == new


def test_failure_events_written_before_retry_rules_decode_with_their_new_fields_empty():
    def old(type_name: str, data: dict) -> bytes:
        return orjson.dumps({"id": "e1", "type": type_name, "agg": "run-1", "v": 3, "t": "2026-11-21T08:00:00Z",
                             "sv": 1, "d": data})  # fmt: skip

    failed = decode(
        "1-0", old("RunAttemptFailed", {"attempt": 1, "reason": "Timeout", "exit_code": None, "message": ""})
    )
    assert failed.event == RunAttemptFailed(attempt=1, reason="Timeout", log_matches=())
    retry = decode("2-0", old("RunRetryScheduled", {"attempt": 2, "not_before": "2026-11-21T08:01:00.000000Z"}))
    assert retry.event == RunRetryScheduled(attempt=2, not_before="2026-11-21T08:01:00.000000Z")
    assert (retry.event.delay_minutes, retry.event.rule) == (None, None)
    ended = decode("3-0", old("RunFailed", {"attempt": 2, "reason": "NonZeroExitCode", "exit_code": 1, "message": ""}))
    assert ended.event == RunFailed(attempt=2, reason="NonZeroExitCode", exit_code=1, rule=None)


def test_a_schema_1_workflow_run_started_reads_as_a_real_run_not_a_prerun():
    """WorkflowRunStarted schema 2 added ``prerun``; every run started before it was a real one."""
    from queue_core.eventlog.events import WorkflowRunStarted

    new = WorkflowRunStarted(workflow_id="w", workflow="etl", workflow_version=1, logical_date="2026-11-21", tasks={})
    envelope = orjson.loads(encode(NewEvent("wrun-1", new), 1, "t"))
    envelope["sv"] = 1
    del envelope["d"]["prerun"]  # exactly what a schema-1 writer stored
    old = decode("1-0", orjson.dumps(envelope)).event
    assert (old.prerun, old.workflow, old.tasks) == (False, "etl", {})  # type: ignore[attr-defined]
