"""Row 3: only the ``rq worker`` process is killed, not its job.

Unlike RQ's forking worker, whose orphaned work-horse would finish the job, jobledger's job dies with its
worker (``PR_SET_PDEATHSIG``): nobody would be left to record its outcome or watch its timeout and cancel.
What the job started dies when the next worker starts on the machine (it kills the sessions of attempts
whose worker is gone). The attempt is ``WorkerLost`` when its lease expires, and retried. RQ's own later
verdict on the abandoned job (its StartedJobRegistry cleanup) changes nothing in the run: the log decides
(rq/rq#2424).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import redis
from rq import Queue
from rq.registry import StartedJobRegistry

from queue_core import Client
from queue_core.services.lifecycle import attempt_job_id
from tests.support.faults import assert_log_holds, marks
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs, eventually, pid_alive


def test_a_killed_worker_takes_its_job_along_and_rqs_abandoned_verdict_changes_nothing(
    client: Client, workspace: Path, procs: Procs, redis_url: str, connection: redis.Redis, tmp_path: Path
):
    markers, pids = tmp_path / "markers", tmp_path / "pids"
    body = (
        f'echo "$JOBLEDGER_RUN_ID:$JOBLEDGER_ATTEMPT" >> {markers}\n'
        f'[ "$JOBLEDGER_ATTEMPT" -ge 2 ] && exit 0\nsleep 300 &\necho "$$ $!" > {pids}\nwait\n'
    )
    client.define(definition("parent", job_file(workspace, "parent.sh", body), retries=1, timeout=10))
    (worker,) = procs.fleet(redis_url).workers
    run_id = client.submit("parent")
    eventually(lambda: pids.exists() and pids.read_text().strip(), what="the job to start")
    job_pid, grandchild = map(int, pids.read_text().split())
    os.kill(worker.pid, signal.SIGKILL)  # the worker alone, not its process group
    eventually(lambda: not pid_alive(job_pid), what="the job to die with its worker")
    assert pid_alive(grandchild)  # what the job started outlives it, until a worker starts here again
    procs.worker(redis_url)
    eventually(lambda: not pid_alive(grandchild), what="the next worker to kill what was left")
    run = client.wait(run_id, timeout=30)
    assert [(a["status"], a["reason"]) for a in run["attempts"]] == [("FAILED", "WorkerLost"), ("SUCCEEDED", None)]
    before = client.events(aggregate=run_id)
    # RQ's maintenance, fast-forwarded an hour: the first attempt's job is found abandoned and failed.
    registry = StartedJobRegistry(queue=Queue("default", connection=connection))
    registry.cleanup(timestamp=time.time() + 3600)
    assert connection.hget(f"rq:job:{attempt_job_id(run_id, 1)}", "status") == b"failed"
    assert client.events(aggregate=run_id) == before
    assert marks(markers) == [f"{run_id}:1", f"{run_id}:2"]
    assert_log_holds(client, [run_id], markers)
