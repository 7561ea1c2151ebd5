"""Rows 4 and 5: a worker asked to stop while it runs an attempt.

Row 4, warm shutdown (one SIGTERM): the attempt runs to its end and is recorded, then the worker exits
without taking the next job, which waits in its queue for another worker.

Row 5, cold shutdown (a second SIGTERM): the job's process group is killed and the worker records
``RunAttemptFailed`` / ``WorkerLost`` ("cold shutdown") itself before it exits, so the run is retried
at once per its retry strategy instead of after its lease expires. RQ ignores a second signal that
comes within a second of the first (it takes them for one Ctrl-C seen twice), so the test keeps
signalling until the worker says it is shutting down cold.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from queue_core import Client
from tests.support.faults import assert_log_holds, marks
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs, eventually
from workers.attempt import COLD_SHUTDOWN


def _log(procs: Procs) -> str:
    return "".join(p.read_text() for p in procs.log_dir.glob("*.log"))


def test_a_warm_shutdown_finishes_and_records_the_attempt_and_takes_no_new_job(
    client: Client, workspace: Path, procs: Procs, redis_url: str, tmp_path: Path
):
    markers, release = tmp_path / "markers", tmp_path / "release"
    body = f'echo "$JOBLEDGER_RUN_ID:$JOBLEDGER_ATTEMPT" >> {markers}\nwhile [ ! -e {release} ]; do sleep 0.05; done\n'
    client.define(definition("warm", job_file(workspace, "warm.sh", body), timeout=10))
    (worker,) = procs.fleet(redis_url).workers
    first = client.submit("warm")
    eventually(lambda: markers.exists(), what="the attempt to start")
    second = client.submit("warm")
    eventually(lambda: client.get_run(second)["reason"] == "In queue", what="the next run to be queued")
    os.kill(worker.pid, signal.SIGTERM)
    eventually(lambda: "warm shut down requested" in _log(procs), what="the worker to take the request")
    release.touch()
    assert worker.wait(timeout=30) == 0
    assert client.get_run(first)["status"] == "SUCCEEDED"
    assert (client.get_run(second)["status"], client.get_run(second)["reason"]) == ("PENDING", "In queue")
    procs.worker(redis_url)
    assert client.wait(second, timeout=30)["status"] == "SUCCEEDED"
    assert marks(markers) == [f"{first}:1", f"{second}:1"]
    assert_log_holds(client, [first, second], markers)


def test_a_cold_shutdown_kills_the_job_records_worker_lost_and_the_run_is_retried(
    client: Client, workspace: Path, procs: Procs, redis_url: str, tmp_path: Path
):
    markers = tmp_path / "markers"
    body = f'echo "$JOBLEDGER_RUN_ID:$JOBLEDGER_ATTEMPT" >> {markers}\n[ "$JOBLEDGER_ATTEMPT" -ge 2 ] || sleep 300\n'
    client.define(definition("cold", job_file(workspace, "cold.sh", body), retries=1, timeout=10))
    (worker,) = procs.fleet(redis_url).workers
    run_id = client.submit("cold")
    eventually(lambda: markers.exists(), what="the attempt to start")
    os.kill(worker.pid, signal.SIGTERM)
    eventually(lambda: "warm shut down requested" in _log(procs), what="the warm shutdown request")

    def signal_again() -> bool:
        if worker.poll() is None:
            os.kill(worker.pid, signal.SIGTERM)
        return "cold shut down" in _log(procs)

    eventually(signal_again, interval=0.2, what="a cold shutdown")
    worker.wait(timeout=30)
    failed = eventually(lambda: [e for e in client.events(aggregate=run_id) if e.type == "RunAttemptFailed"])
    assert (failed[0].event.reason, failed[0].event.message) == ("WorkerLost", COLD_SHUTDOWN)
    procs.worker(redis_url)
    run = client.wait(run_id, timeout=30)
    assert [(a["status"], a["reason"]) for a in run["attempts"]] == [("FAILED", "WorkerLost"), ("SUCCEEDED", None)]
    assert marks(markers) == [f"{run_id}:1", f"{run_id}:2"]
    assert_log_holds(client, [run_id], markers)
