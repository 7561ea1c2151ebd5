"""A plain array's children's ends are noted on its parent together, and their log entries acknowledged only then:
a dispatcher that stops before noting them leaves them to another, which notes them; none is lost. Ends read
before a restore to an earlier point, which the restored log does not hold, are not noted."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import scheduler.dispatcher as dispatching
from queue_core import Client, Settings
from queue_core.domain.arrays import child_id
from queue_core.eventlog.health import record_epoch
from queue_core.eventlog.maintenance_mode import maintenance
from queue_core.eventlog.transfer import import_export, wipe, write_export
from queue_core.readmodels.materialized import ReadModels, rebuild
from queue_core.services.lifecycle import RunLifecycle
from scheduler.dispatcher import Dispatcher
from tests.support.jobs import definition, job_file
from tests.support.processes import eventually

CHILDREN = 6


def _end_children(client: Client, parent: str) -> None:
    """Every child claimed and succeeded, as a worker records them (no job is run: the ends are the point)."""
    lifecycle = RunLifecycle(client.store)
    for index in range(CHILDREN):
        run_id = child_id(parent, index)
        claim = lifecycle.claim(run_id, 1, "test-worker", socket.gethostname(), 1)
        assert claim is not None and lifecycle.succeed(claim)


def _pending(client: Client) -> int:
    summary = client.redis.xpending(client.store.keys.log, client.store.keys.dispatch_group)
    return int(summary["pending"])


@contextmanager
def _running(dispatcher: Dispatcher) -> Iterator[None]:
    thread = threading.Thread(target=dispatcher.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        dispatcher.stop()
        thread.join(timeout=30)


def _submitted_array(
    client: Client, settings: Settings, workspace: Path, export: Path | None = None
) -> tuple[str, Dispatcher]:
    """An array whose children all ended, their ends read by a dispatcher and waiting to be noted (``export``:
    the log as it was before the ends, written there)."""
    client.define(definition("short", job_file(workspace, "short.sh", "true\n")))
    parent = client.submit("short", array=CHILDREN)
    first = Dispatcher(settings, name="first")
    first.ensure_group()
    while first.step():  # the parent's children submitted and queued
        pass
    if export is not None:
        write_export(export, client.store.read_chain(), "")
    _end_children(client, parent)
    assert first.step() > 0  # the ends read: waiting to be noted, their entries not acknowledged
    assert _noted(client, parent) == [] and client.get_run(parent)["status"] != "SUCCEEDED"
    assert _pending(client) >= CHILDREN
    return parent, first


def _noted(client: Client, parent: str) -> list[tuple[int, ...]]:
    return [tuple(e.event.indexes) for e in client.events(aggregate=parent) if e.type == "RunArrayChildrenEnded"]


def test_a_plain_arrays_ends_are_noted_together_and_acknowledged_after(
    client: Client, settings: Settings, workspace: Path
):
    parent, dispatcher = _submitted_array(client, settings, workspace)
    with _running(dispatcher):
        eventually(lambda: client.get_run(parent)["status"] == "SUCCEEDED", what="the parent to end")
    assert _noted(client, parent) == [tuple(range(CHILDREN))]  # one append for all six ends
    assert _pending(client) == 0


def test_ends_a_dispatcher_stopped_before_noting_are_noted_by_another(
    client: Client, settings: Settings, workspace: Path, monkeypatch: pytest.MonkeyPatch
):
    parent, _abandoned = _submitted_array(client, settings, workspace)  # it never notes them: as if killed
    monkeypatch.setattr(dispatching, "CLAIM_IDLE_MS", 0)  # the second takes the first's entries over at once
    with _running(Dispatcher(settings, name="second")):
        eventually(lambda: client.get_run(parent)["status"] == "SUCCEEDED", what="the other dispatcher to note them")
    run = client.get_run(parent)
    assert run["array"]["counts"]["SUCCEEDED"] == CHILDREN
    assert sorted(i for noted in _noted(client, parent) for i in noted) == list(range(CHILDREN))
    assert _pending(client) == 0


def test_ends_read_before_a_restore_to_an_earlier_point_are_not_noted(
    client: Client, settings: Settings, workspace: Path, tmp_path: Path
):
    earlier = tmp_path / "earlier.jsonl.gz"
    parent, dispatcher = _submitted_array(client, settings, workspace, earlier)
    store = client.store
    with maintenance(store, "restore"):  # the store lost; what comes back is the log before the ends
        wipe(store)
        import_export(store, earlier)
        record_epoch(store, settings)
        rebuild(store, ReadModels(store))
    later = client.submit("short")
    with _running(dispatcher):  # the same dispatcher, its ends still waiting
        eventually(lambda: client.get_run(later)["reason"] == "In queue", what="the dispatcher past the restore")
        eventually(lambda: _pending(client) == 0, what="the dispatcher to acknowledge what it read")
    assert _noted(client, parent) == []  # the children's ends are not in this log: nothing noted
    assert {client.get_run(child_id(parent, i))["status"] for i in range(CHILDREN)} == {"PENDING"}
    assert client.get_run(parent)["status"] not in ("SUCCEEDED", "FAILED")
