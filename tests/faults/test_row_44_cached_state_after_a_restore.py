"""Row 44: processes alive across a restore to an earlier point refresh what they cached and go on.

The workflow engine keeps each workflow run's fold in the dispatcher's memory. Here the dispatcher folds
a workflow run past the point an export was taken (its only task submitted and running), then the store
is lost and the export imported: the log is back, at an earlier point, under the same epoch. The
dispatcher, never restarted, must see that its fold is ahead of the log, fold again from the log, submit
the task again and finish the workflow run. The metrics fold and the schedule timer, which follow the log
from the last position they saw, must notice that position is gone and start again from the log.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from queue_core import Client
from queue_core.console.prometheus import LogCollector
from queue_core.eventlog.store import EventStore
from queue_core.eventlog.transfer import import_export, wipe, write_export
from queue_core.readmodels.materialized import rebuild_live
from scheduler.timer import Timer
from tests.support.clock import T0
from tests.support.faults import assert_log_holds
from tests.support.jobs import definition, job_file, native, shell_task
from tests.support.processes import Procs, eventually
from tests.support.redis_server import RedisServer


def test_a_dispatcher_kept_alive_across_a_restore_to_an_earlier_point_finishes_the_workflow_run(
    client: Client, workspace: Path, procs: Procs, redis_url: str, store_server: RedisServer, tmp_path: Path
):
    started, release = tmp_path / "started", tmp_path / "release"
    body = f'echo "$JOBLEDGER_RUN_ID" >> {started}\nwhile [ ! -e {release} ]; do sleep 0.05; done\n'
    client.apply_workflow(native("restored", {"only": shell_task(workspace, "only", body)}))
    workflow_run = client.run_workflow("restored")
    earlier = tmp_path / "earlier.jsonl.gz"
    exported = procs.cli("export", str(earlier))
    assert exported.returncode == 0, exported.stderr
    assert [r.type for r in client.events(aggregate=workflow_run)] == ["WorkflowRunStarted"]  # what it holds
    dispatcher = procs.dispatcher()
    worker = procs.worker(redis_url)
    eventually(started.exists, what="the dispatcher to submit the task and a worker to start it")
    os.killpg(worker.pid, signal.SIGKILL)

    store_server.kill()  # the store is lost; what comes back is the earlier export
    restored = RedisServer(tmp_path / "restored", port=store_server.port)
    restored.start()
    try:
        imported = procs.cli("import", str(earlier))
        assert imported.returncode == 0, imported.stderr
        procs.worker(redis_url)
        release.touch()
        view = client.wait_workflow_run(workflow_run, timeout=30)
        assert view["status"] == "SUCCEEDED"
        assert [r.type for r in client.events(aggregate=workflow_run)].count("TaskSubmitted") == 1
        assert dispatcher.poll() is None  # the same dispatcher, kept alive throughout
        assert_log_holds(client, [workflow_run, view["tasks"]["only"]["run"]])
    finally:
        restored.kill()


def _restore(store: EventStore, export: Path) -> None:
    """What ``jobledger import`` does to a store that lost its data: load the export, rebuild the read models."""
    wipe(store)
    import_export(store, export)
    rebuild_live(store)


def test_the_metrics_fold_and_the_timer_start_again_from_a_log_restored_to_an_earlier_point(
    client: Client, store: EventStore, timer: Timer, workspace: Path, tmp_path: Path
):
    client.define(definition("counted", job_file(workspace, "counted.sh", "true\n")))
    schedule = client.create_schedule("hourly", definition="counted", cron="@hourly", now=T0)["id"]
    client.submit("counted")
    timer.run_pass()
    assert schedule in timer.registry.entries()
    earlier = tmp_path / "earlier.jsonl.gz"
    write_export(earlier, store.read_chain(), "")  # one run submitted, the schedule active
    client.submit("counted")
    client.pause_schedule("hourly")
    collector = LogCollector(store)
    collector.catch_up()
    timer.run_pass()  # follows the pause: the wake-up is removed
    assert (collector.fold.events["RunSubmitted"], schedule in timer.registry.entries()) == (2, False)

    _restore(store, earlier)
    client.submit("counted")  # the log moves on past the positions both had reached
    collector.catch_up()
    assert collector.fold.events["RunSubmitted"] == 2  # the run submitted before the restore is gone
    timer.run_pass()
    assert schedule in timer.registry.entries()  # active again in the restored log: armed again
    assert_log_holds(client, ended=False)
