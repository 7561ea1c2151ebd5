"""Row 44: a dispatcher alive across a restore to an earlier point refreshes what it cached and goes on.

The workflow engine keeps each workflow run's fold in the dispatcher's memory. Here the dispatcher folds
a workflow run past the point an export was taken (its only task submitted and running), then the store
is lost and the export imported: the log is back, at an earlier point, under the same epoch. The
dispatcher, never restarted, must see that its fold is ahead of the log, fold again from the log, submit
the task again and finish the workflow run.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from queue_core import Client
from tests.support.faults import assert_log_holds
from tests.support.jobs import native, shell_task
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
    exported = procs.cli("export", str(earlier))  # the workflow run started, nothing submitted yet
    assert exported.returncode == 0, exported.stderr
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
        assert [r.type for r in client.events(aggregate=workflow_run)] == ["WorkflowRunStarted"]
        procs.worker(redis_url)
        release.touch()
        view = client.wait_workflow_run(workflow_run, timeout=30)
        assert view["status"] == "SUCCEEDED"
        assert dispatcher.poll() is None  # the same dispatcher, kept alive throughout
        assert_log_holds(client, [workflow_run, view["tasks"]["only"]["run"]])
    finally:
        restored.kill()
