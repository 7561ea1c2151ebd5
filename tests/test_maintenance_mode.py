"""The store's maintenance marker: appends refused while it is held, what says so, and ending a dead holder's."""

from __future__ import annotations

import orjson
import pytest
import redis

from queue_core import Client, StoreUnderMaintenance
from queue_core.eventlog.maintenance_mode import maintenance, read_marker
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs


def _dead_holder(connection: redis.Redis, operation: str) -> None:
    """A marker whose holder died: its lease lapsed (here: never set)."""
    marker = {"operation": operation, "holder": "gone-host.1:" + operation, "since": "2026-12-06T17:00:00Z"}
    connection.set("jobledger:maintenance", orjson.dumps(marker))


def test_while_an_import_holds_the_store_appends_are_refused_with_one_line(client: Client, procs: Procs, workspace):
    client.define(definition("quick", job_file(workspace, "quick.sh", "true\n")))
    length = client.store.length()
    client.store.patience_seconds = 0.2  # how long an append waits for the maintenance to end before it refuses
    with maintenance(client.store, "import"):
        with pytest.raises(StoreUnderMaintenance, match=r"^store under maintenance: import in progress"):
            client.submit("quick")  # a client made before: refused by the append script itself
        refused = procs.cli("submit", "quick")
        assert refused.returncode == 2
        assert refused.stderr.startswith("jobledger: store under maintenance: import in progress")
        assert refused.stderr.count("\n") == 1
        status = procs.cli("maintenance", "status")
        assert status.stdout.startswith("store under maintenance: import in progress")
        shown = orjson.loads(procs.cli("maintenance", "status", "--json").stdout)
        assert shown["operation"] == "import" and shown["alive"] is True
        assert procs.cli("maintenance", "clear").returncode == 2  # its holder is alive: not cleared
    assert client.store.length() == length  # nothing was appended
    assert read_marker(client.store) is None  # cleared last
    assert client.submit("quick")


def test_a_dead_rebuilds_marker_is_cleared_by_the_first_process_that_looks(client: Client, connection: redis.Redis):
    _dead_holder(connection, "rebuild")
    Client(settings=client.settings).create_cluster("pool")
    assert read_marker(client.store) is None


def test_an_interrupted_import_is_kept_until_aborted_and_then_leaves_an_empty_store(
    client: Client, procs: Procs, connection: redis.Redis, workspace
):
    client.define(definition("quick", job_file(workspace, "quick.sh", "true\n")))
    connection.delete("jobledger:epoch")  # the import died before setting the epoch of the log it loaded
    _dead_holder(connection, "import")
    refused = procs.cli("runs")
    assert refused.returncode == 2
    assert refused.stderr.startswith("jobledger: store under maintenance: import interrupted")
    assert "`jobledger maintenance clear`" in refused.stderr
    kept = procs.cli("maintenance", "clear")
    assert kept.returncode == 2 and "partial log" in kept.stderr
    assert connection.exists("jobledger:log")
    aborted = procs.cli("maintenance", "clear", "--abort")
    assert aborted.returncode == 0, aborted.stderr
    assert "removed the partial log" in aborted.stdout
    assert connection.keys("jobledger:*") == []
    assert procs.cli("maintenance", "status").stdout.strip() == "not under maintenance"
