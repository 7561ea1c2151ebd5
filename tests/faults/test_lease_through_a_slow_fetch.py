"""Leases cover the whole attempt: a source fetch longer than the lease, after a long wait in the queue, is not
taken for a lost attempt and delivered again.

The worker takes the attempt's lease when RQ delivers it and renews it until the attempt ends, through the
fetch. Two workers run, so a duplicate delivery would be picked up and fetched at once. The reconciler is
run here, pass after pass, for as long as the fetch takes (three leases), with no grace: every pass could
take the attempt back if its lease lapsed.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import redis

from queue_core import Client, Settings
from queue_core.cli.fleet import fleet_command
from queue_core.eventlog.store import EventStore
from scheduler.maintenance import Maintenance
from tests.support.faults import assert_log_holds, marker_job
from tests.support.jobs import definition
from tests.support.processes import Procs, eventually

SLOW_FETCH_WORKER = Path(__file__).parent.parent / "support" / "slow_fetch_worker.py"


def slow_fetch_worker(procs: Procs, url: str, seconds: float, fetches: Path) -> subprocess.Popen[bytes]:
    command = fleet_command(url, "default")[1:]
    return procs.spawn([sys.executable, str(SLOW_FETCH_WORKER), str(seconds), str(fetches), *command], "slow-fetch")


def test_a_fetch_longer_than_the_lease_is_not_delivered_again(
    client: Client,
    settings: Settings,
    workspace: Path,
    procs: Procs,
    redis_url: str,
    connection: redis.Redis,
    store: EventStore,
    tmp_path: Path,
):
    fetches, markers = tmp_path / "fetches", tmp_path / "markers"
    fetch_seconds = 3 * settings.lease_seconds
    client.define(definition("slow-source", marker_job(workspace, markers)))
    procs.dispatcher()
    for _ in range(2):
        slow_fetch_worker(procs, redis_url, fetch_seconds, fetches)
    run_id = client.submit("slow-source")
    eventually(fetches.exists, what="a worker to start fetching the source")
    reconciler = Maintenance(dataclasses.replace(settings, reconcile_after_seconds=0), connection, store, "test")
    passes = 0
    pause = threading.Event()
    while client.get_run(run_id)["status"] == "PENDING":  # until the fetch ends and the attempt is claimed
        reconciler.read_models.catch_up()
        reconciler.reconcile(datetime.now(UTC))
        passes += 1
        pause.wait(0.1)
    assert passes > 10  # the reconciler looked all through the fetch
    assert client.wait(run_id, timeout=30)["status"] == "SUCCEEDED"
    assert len(fetches.read_text().split()) == 1  # one delivery fetched the source
    assert int(connection.get(store.keys.deliveries(run_id, 1)) or 0) == 1
    assert_log_holds(client, [run_id], markers)
