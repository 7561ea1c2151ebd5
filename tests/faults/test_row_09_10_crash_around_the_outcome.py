"""Rows 9 and 10: the worker crashes just before, or just after, it appends the attempt's outcome.

A fault hook (``crashing_worker.py``) makes the real ``rq worker`` process ``os._exit(137)`` at that point.

Row 9, before: the job's side effect happened, its success was never recorded. The lease expires, the
attempt is ``WorkerLost`` and retried: the job runs twice (execution is at-least-once) and
``RunSucceeded`` is recorded once, for the second attempt. ``JOBLEDGER_RUN_ID`` (with
``JOBLEDGER_ATTEMPT``) is the idempotency key the job sees: a job that keys its side effect by it
makes it once.

Row 10, after: ``RunSucceeded`` is on the log but RQ never heard the job ended. Whatever RQ does with
the job later (fails it as abandoned, or runs it again) changes nothing: the run is over, a new
delivery of the attempt runs no job code.
"""

from __future__ import annotations

import time
from pathlib import Path

import redis
from rq import Queue
from rq.registry import StartedJobRegistry

from queue_core import Client
from queue_core.services.lifecycle import attempt_job_id
from scheduler.rq_jobs import enqueue_attempt
from tests.support.faults import assert_log_holds, crashing_worker, marks
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs


def _payment_job(workspace: Path, markers: Path, payments: Path) -> str:
    """Marks each execution, and makes its payment once per run: keyed by the run id it is given."""
    body = (
        f'echo "$JOBLEDGER_RUN_ID:$JOBLEDGER_ATTEMPT" >> {markers}\n'
        f'mkdir -p {payments}\n[ -e {payments}/"$JOBLEDGER_RUN_ID" ] || echo paid > {payments}/"$JOBLEDGER_RUN_ID"\n'
    )
    return job_file(workspace, "pay.sh", body)


def test_a_crash_after_the_side_effect_before_the_outcome_reruns_the_job_and_records_success_once(
    client: Client, workspace: Path, procs: Procs, redis_url: str, tmp_path: Path
):
    markers, payments = tmp_path / "markers", tmp_path / "payments"
    client.define(definition("pay", _payment_job(workspace, markers, payments), retries=1, timeout=10))
    procs.dispatcher()
    crashed = crashing_worker(procs, redis_url, "before-success", "default")
    run_id = client.submit("pay")
    assert crashed.wait(timeout=30) == 137
    procs.worker(redis_url)
    run = client.wait(run_id, timeout=30)
    assert [(a["status"], a["reason"]) for a in run["attempts"]] == [("FAILED", "WorkerLost"), ("SUCCEEDED", None)]
    assert [e.event.attempt for e in client.events(aggregate=run_id, type="RunSucceeded")] == [2]
    assert marks(markers) == [f"{run_id}:1", f"{run_id}:2"]  # at least once
    assert [p.name for p in payments.iterdir()] == [run_id]  # once, by the key the job was given
    assert_log_holds(client, [run_id], markers)


def test_a_crash_after_the_outcome_leaves_the_run_succeeded_whatever_rq_does_with_the_job(
    client: Client, workspace: Path, procs: Procs, redis_url: str, connection: redis.Redis, tmp_path: Path
):
    markers, payments = tmp_path / "markers", tmp_path / "payments"
    client.define(definition("pay", _payment_job(workspace, markers, payments), retries=1, timeout=10))
    procs.dispatcher()
    crashed = crashing_worker(procs, redis_url, "after-success", "default")
    run_id = client.submit("pay")
    assert crashed.wait(timeout=30) == 137
    assert client.get_run(run_id)["status"] == "SUCCEEDED"
    job_key = f"rq:job:{attempt_job_id(run_id, 1)}"
    assert connection.hget(job_key, "status") == b"started"  # RQ never learned it ended
    events = client.events(aggregate=run_id)
    StartedJobRegistry(queue=Queue("default", connection=connection)).cleanup(timestamp=time.time() + 3600)
    assert connection.hget(job_key, "status") == b"failed"  # RQ's verdict: abandoned
    enqueue_attempt(connection, "default", run_id, 1)  # and RQ running it again, as a retry would
    assert procs.worker(redis_url, burst=True).wait(timeout=60) == 0
    assert client.events(aggregate=run_id) == events
    assert marks(markers) == [f"{run_id}:1"]
    assert_log_holds(client, [run_id], markers)
