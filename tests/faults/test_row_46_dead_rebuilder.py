"""Row 46: the process rebuilding the read models after an upgrade dies holding the rebuild lock.

The lock used to be held for 600 s: every other reader (the dispatcher's main loop among them) waited it out,
deaf to SIGTERM. It is now a lease of a few seconds, renewed while the rebuild runs; waiters say what they
wait for and stop when told to.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
import redis

from queue_core import Client
from queue_core.eventlog.events import RunSubmitted
from queue_core.readmodels.projections import FOLD_VERSION
from tests.support.biglog import append_runs
from tests.support.faults import assert_log_holds
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs, eventually, pid_alive

RUNS = 5_000  # enough events that a rebuild is caught holding its lock


def _upgraded(client: Client) -> None:
    """Read models folded by other code: the first reader rebuilds them."""
    client.read_models.catch_up()
    client.redis.set(client.store.keys.folded_by("live"), "an-older-fold")


def _holder(connection: redis.Redis, keys_lock: str) -> str:
    value = connection.get(keys_lock)
    return value.decode() if value else ""


def _log(procs: Procs) -> str:
    return "".join(p.read_text() for p in procs.log_dir.glob("*.log"))


def test_a_rebuilder_killed_holding_the_lock_frees_the_fleet_within_seconds(
    client: Client, workspace: Path, procs: Procs, connection: redis.Redis
):
    client.define(definition("quick", job_file(workspace, "quick.sh", "true\n")))
    submitted = client.store.load(client.submit("quick"))[0].event
    assert isinstance(submitted, RunSubmitted)
    append_runs(client.store, RUNS, ("quick",), submitted.job)
    _upgraded(client)
    lock = client.store.keys.rebuild_lock
    rebuilder = procs.spawn([sys.executable, "-m", "queue_core", "runs"], "rebuilder")  # the first reader
    eventually(lambda: f".{rebuilder.pid}:" in _holder(connection, lock), what="the rebuilder to take the lock")
    os.kill(rebuilder.pid, signal.SIGKILL)
    rebuilder.wait()

    dispatcher = procs.dispatcher()  # its first pass reads the read models: it waits for the dead rebuilder
    run_id = client.submit("quick")
    eventually(lambda: any(r.type == "RunQueued" for r in client.store.load(run_id)), what="the dispatcher to go on")
    assert connection.get(client.store.keys.folded_by("live")).decode() == FOLD_VERSION
    assert not pid_alive(rebuilder.pid) and dispatcher.poll() is None
    assert_log_holds(client, [run_id], ended=False)


@pytest.mark.parametrize("timer", [False, True], ids=["dispatcher", "scheduler with its timer"])
def test_a_dispatcher_waiting_for_a_rebuild_stops_on_sigterm(
    client: Client, procs: Procs, connection: redis.Redis, timer: bool
):
    client.create_cluster("pool")
    _upgraded(client)
    connection.set(client.store.keys.rebuild_lock, "another-host.1:rebuild:alive", px=120_000)  # a live rebuilder
    dispatcher = procs.dispatcher(timer=timer)
    eventually(lambda: "waiting for another process's rebuild" in _log(procs), what="the dispatcher to say it waits")
    assert "another-host.1:rebuild:alive" in _log(procs)
    dispatcher.send_signal(signal.SIGTERM)
    assert dispatcher.wait(timeout=10) == 0
    assert "dispatcher stopped" in _log(procs)
