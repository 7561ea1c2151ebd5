"""``Client.wait`` follows the run's own events as they land, among many other runs' events, and through a
restore of the log to an earlier point."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

from queue_core import Client, Settings
from queue_core.eventlog.health import record_epoch
from queue_core.eventlog.maintenance_mode import maintenance
from queue_core.eventlog.transfer import import_export, wipe, write_export
from queue_core.readmodels.materialized import ReadModels, rebuild
from queue_core.services.lifecycle import RunLifecycle
from tests.support.jobs import definition, job_file
from tests.support.processes import eventually


class _Waiter:
    """``Client.wait`` on another thread: what it returned, once it did."""

    def __init__(self, client: Client, run_id: str) -> None:
        self.result: dict[str, Any] | None = None
        self.thread = threading.Thread(target=self._wait, args=(client, run_id), daemon=True)
        self.thread.start()

    def _wait(self, client: Client, run_id: str) -> None:
        self.result = client.wait(run_id, timeout=60)


def _claimed(client: Client, run_id: str) -> Any:
    claim = RunLifecycle(client.store).claim(run_id, 1, "test-worker", socket.gethostname(), 1)
    assert claim is not None
    return claim


def test_a_wait_returns_the_end_of_its_run_among_many_other_runs_events(client: Client, workspace: Path):
    client.define(definition("short", job_file(workspace, "short.sh", "true\n")))
    waited, others = client.submit("short"), [client.submit("short") for _ in range(40)]
    waiter = _Waiter(client, waited)
    lifecycle = RunLifecycle(client.store)
    for run_id in others:  # other runs' events wake the wait; none of them is its run's
        assert lifecycle.succeed(_claimed(client, run_id))
    assert waiter.thread.is_alive()
    assert lifecycle.fail(_claimed(client, waited), "NonZeroExit", 3, "exit code 3")
    waiter.thread.join(timeout=60)
    assert waiter.result is not None and (waiter.result["status"], waiter.result["reason"]) == ("FAILED", "NonZeroExit")


def test_a_wait_begun_before_a_restore_to_an_earlier_point_returns_the_run_as_the_restored_log_ends_it(
    client: Client, settings: Settings, workspace: Path, tmp_path: Path
):
    client.define(definition("short", job_file(workspace, "short.sh", "true\n")))
    run_id = client.submit("short")
    earlier = tmp_path / "earlier.jsonl.gz"
    write_export(earlier, client.store.read_chain(), "")  # the run not started yet
    _claimed(client, run_id)  # started on the log the restore then loses
    waiter = _Waiter(client, run_id)
    eventually(lambda: client.get_run(run_id)["status"] == "RUNNING", what="the run to start")
    store = client.store
    with maintenance(store, "restore"):
        wipe(store)
        import_export(store, earlier)
        record_epoch(store, settings)
        rebuild(store, ReadModels(store))
    claim = _claimed(client, run_id)  # started again on the restored log, then it succeeds
    assert RunLifecycle(store).succeed(claim)
    waiter.thread.join(timeout=60)
    assert waiter.result is not None and waiter.result["status"] == "SUCCEEDED"
    assert len(waiter.result["attempts"]) == 1  # one start: the one the restored log holds
