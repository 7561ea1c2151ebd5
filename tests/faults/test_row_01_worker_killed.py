"""Row 1: the whole worker (``rq worker`` and the job it runs) is killed, or frozen, mid-attempt.

jobledger's worker runs the job as its own child (no RQ work-horse); killing the worker's process
group kills both. The run stays RUNNING until the attempt's lease expires, then the dispatcher
records ``RunAttemptFailed`` / ``WorkerLost`` and retries it if retries remain, else ``RunFailed``.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from queue_core import Client
from tests.support.faults import assert_log_holds, marker_job, marks
from tests.support.jobs import definition
from tests.support.processes import Procs, eventually


def test_kill_9_of_the_worker_mid_attempt_ends_the_run_worker_lost(
    client: Client, workspace: Path, procs: Procs, redis_url: str, tmp_path: Path
):
    markers = tmp_path / "markers"
    client.define(definition("doomed", marker_job(workspace, markers, "exec sleep 300"), timeout=10))
    (worker,) = procs.fleet(redis_url).workers
    run_id = client.submit("doomed")
    eventually(lambda: markers.exists(), what="the attempt to start")
    os.killpg(worker.pid, signal.SIGKILL)
    assert client.get_run(run_id)["status"] == "RUNNING"  # until its lease expires
    run = client.wait(run_id, timeout=30)
    assert (run["status"], run["reason"]) == ("FAILED", "WorkerLost")
    assert [(a["status"], a["reason"]) for a in run["attempts"]] == [("FAILED", "WorkerLost")]
    assert_log_holds(client, [run_id], markers)


def test_kill_9_of_the_worker_with_retries_left_retries_and_succeeds(
    client: Client, workspace: Path, procs: Procs, redis_url: str, tmp_path: Path
):
    markers = tmp_path / "markers"
    body = marker_job(workspace, markers, '[ "$JOBLEDGER_ATTEMPT" -ge 2 ] || exec sleep 300', "phoenix.sh")
    client.define(definition("phoenix", body, retries=1, timeout=10))
    (worker,) = procs.fleet(redis_url).workers
    run_id = client.submit("phoenix")
    eventually(lambda: markers.exists(), what="the first attempt to start")
    os.killpg(worker.pid, signal.SIGKILL)
    procs.worker(redis_url)
    run = client.wait(run_id, timeout=30)
    assert run["status"] == "SUCCEEDED"
    assert [(a["status"], a["reason"]) for a in run["attempts"]] == [("FAILED", "WorkerLost"), ("SUCCEEDED", None)]
    assert marks(markers) == [f"{run_id}:1", f"{run_id}:2"]
    assert_log_holds(client, [run_id], markers)


def test_a_late_outcome_from_a_frozen_worker_declared_lost_is_refused(
    client: Client, workspace: Path, procs: Procs, redis_url: str, tmp_path: Path
):
    markers = tmp_path / "markers"
    client.define(definition("frozen", marker_job(workspace, markers, "sleep 1"), timeout=10))
    (worker,) = procs.fleet(redis_url).workers
    run_id = client.submit("frozen")
    eventually(lambda: markers.exists(), what="the attempt to start")
    os.kill(worker.pid, signal.SIGSTOP)  # the worker stops renewing its lease; its job finishes meanwhile
    try:
        run = client.wait(run_id, timeout=30)
        assert (run["status"], run["reason"]) == ("FAILED", "WorkerLost")
        events_after_loss = len(client.events(aggregate=run_id))
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    # The worker wakes up and tries to record success: the version check refuses it.
    eventually(lambda: "late outcome refused" in procs_logs(procs), what="the refusal to be logged")
    assert len(client.events(aggregate=run_id)) == events_after_loss
    assert client.get_run(run_id)["status"] == "FAILED"
    assert_log_holds(client, [run_id], markers)


def procs_logs(procs: Procs) -> str:
    return "".join(p.read_text() for p in procs.log_dir.glob("*.log"))
