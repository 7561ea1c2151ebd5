"""Rows 11 and 12: a worker dies right after it popped a job off its queue, before it claimed the attempt.

A fault hook (``crashing_worker.py``) ends the real ``rq worker`` with ``os._exit(137)`` just after the pop.

Row 11, a worker on two queues: RQ pops with ``BLPOP``, and the job is then in no list or registry at all.
Row 12, a worker on one queue: RQ moves the job into the queue's intermediate list (``BLMOVE``), where it
stays. jobledger's reconciler (the leading dispatcher) does not wait for RQ's own intermediate-list
cleanup (a minute after a first sighting, and only when a worker runs maintenance): an attempt the log
says is queued that RQ holds nowhere, or holds popped at two reconcile passes in a row, is taken back and
enqueued again under the same job id. The attempt never started, so there is no failed attempt to record:
the run simply runs, once. The same holds for a worker that dies after RQ called the job started and
before its claim (the chaos test found it): RQ holds the job "started" for nobody, and with no lease on
the attempt for two reconcile passes, the reconciler takes it back too.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from queue_core import Client
from queue_core.services.lifecycle import attempt_job_id
from tests.support.faults import assert_log_holds, crashing_worker, marker_job, marks
from tests.support.jobs import definition
from tests.support.processes import Procs, eventually
from workers.attempt import MAX_DELIVERIES


@pytest.mark.parametrize("queues", [("default", "other"), ("default",)], ids=["two-queues-blpop", "one-queue-blmove"])
def test_a_job_lost_between_pop_and_start_is_enqueued_again_and_runs_once(
    client: Client,
    workspace: Path,
    procs: Procs,
    redis_url: str,
    connection: redis.Redis,
    tmp_path: Path,
    queues: tuple[str, ...],
):
    markers = tmp_path / "markers"
    client.define(definition("popped", marker_job(workspace, markers)))
    procs.dispatcher()
    crashed = crashing_worker(procs, redis_url, "after-pop", *queues)
    run_id = client.submit("popped")
    assert crashed.wait(timeout=30) == 137
    job_id = attempt_job_id(run_id, 1).encode()
    intermediate = connection.lrange("rq:queue:default:intermediate", 0, -1)
    assert intermediate == ([job_id] if len(queues) == 1 else [])
    _runs_once(client, procs, redis_url, connection, run_id, markers)


def test_a_job_whose_worker_died_after_rq_started_it_and_before_its_claim_is_enqueued_again(
    client: Client, workspace: Path, procs: Procs, redis_url: str, connection: redis.Redis, tmp_path: Path
):
    markers = tmp_path / "markers"
    client.define(definition("stranded", marker_job(workspace, markers)))
    procs.dispatcher()
    crashed = crashing_worker(procs, redis_url, "before-claim", "default")
    run_id = client.submit("stranded")
    assert crashed.wait(timeout=30) == 137
    assert connection.hget(f"rq:job:{attempt_job_id(run_id, 1)}", "status") == b"started"
    assert client.get_run(run_id)["reason"] == "In queue"
    _runs_once(client, procs, redis_url, connection, run_id, markers)


def _runs_once(
    client: Client, procs: Procs, redis_url: str, connection: redis.Redis, run_id: str, markers: Path
) -> None:
    job_id = attempt_job_id(run_id, 1).encode()
    assert connection.lrange("rq:queue:default", 0, -1) == []
    eventually(lambda: connection.lrange("rq:queue:default", 0, -1) == [job_id], timeout=60, what="the reconciler")
    assert connection.lrange("rq:queue:default:intermediate", 0, -1) == []
    assert procs.worker(redis_url, burst=True).wait(timeout=60) == 0
    assert client.get_run(run_id)["status"] == "SUCCEEDED"
    assert marks(markers) == [f"{run_id}:1"]
    assert_log_holds(client, [run_id], markers)


def test_an_attempt_delivered_again_and_again_without_starting_ends_undeliverable(
    client: Client, workspace: Path, procs: Procs, redis_url: str, connection: redis.Redis, tmp_path: Path
):
    markers = tmp_path / "markers"
    client.define(definition("doomed", marker_job(workspace, markers)))
    procs.dispatcher()
    crashed = crashing_worker(procs, redis_url, "before-claim", "default")
    run_id = client.submit("doomed")
    assert crashed.wait(timeout=30) == 137  # the first delivery: the worker died before its claim
    deliveries = client.store.keys.deliveries(run_id, 1)
    assert connection.get(deliveries) == b"1"
    connection.set(deliveries, MAX_DELIVERIES)  # as if it had died that way each time the reconciler re-queued it
    eventually(lambda: connection.lrange("rq:queue:default", 0, -1), timeout=60, what="the reconciler")
    assert procs.worker(redis_url, burst=True).wait(timeout=60) == 0
    run = client.get_run(run_id)
    assert (run["status"], run["attempts"][0]["reason"]) == ("FAILED", "Undeliverable")
    assert marks(markers) == []  # no job code ran
    assert_log_holds(client, [run_id], markers)
