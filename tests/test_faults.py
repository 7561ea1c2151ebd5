"""Faults made to happen: killed and stopped workers, duplicate deliveries, races, hostile RQ payloads."""

from __future__ import annotations

import os
import pickle
import signal
import threading
import zlib
from pathlib import Path

import pytest
import redis
from jobs import definition, job_file
from processes import Procs, eventually
from rq import Queue

from queue_core import Client
from queue_core.errors import AlreadyTerminal
from queue_core.lifecycle import attempt_job_id
from scheduler.rq_jobs import enqueue_attempt
from workers.serializer import JobSerializer


def _assert_log_agrees(client: Client) -> None:
    """Each run has at most one terminal event, versions are contiguous, and replay is identical."""
    terminal = {"RunSucceeded", "RunFailed", "RunCancelled"}
    seen: dict[str, int] = {}
    ends: dict[str, int] = {}
    for rec in client.events():
        assert rec.version == seen.get(rec.aggregate, 0) + 1, f"version gap in {rec.aggregate}"
        seen[rec.aggregate] = rec.version
        if rec.type in terminal:
            ends[rec.aggregate] = ends.get(rec.aggregate, 0) + 1
    assert all(count == 1 for count in ends.values()), ends
    result = client.replay_verify()
    assert result.identical, result.difference


def _marker_job(workspace: Path, markers: Path, seconds: float = 0.0) -> str:
    """A job that leaves one marker line per execution, outside Redis, then sleeps."""
    return job_file(
        workspace, "mark.sh", f'echo "$JOBLEDGER_RUN_ID:$JOBLEDGER_ATTEMPT" >> {markers}\nsleep {seconds}\n'
    )


def test_kill_9_of_the_worker_mid_attempt_ends_the_run_worker_lost(
    client: Client, workspace: Path, procs: Procs, redis_url: str, tmp_path: Path
):
    markers = tmp_path / "markers"
    client.define(definition("doomed", _marker_job(workspace, markers, 300), timeout=10))
    procs.dispatcher()
    worker = procs.worker(redis_url)
    run_id = client.submit("doomed")
    eventually(lambda: markers.exists(), what="the attempt to start")
    os.killpg(worker.pid, signal.SIGKILL)
    run = client.wait(run_id, timeout=30)
    assert (run["status"], run["reason"]) == ("FAILED", "WorkerLost")
    assert len(run["attempts"]) == 1
    _assert_log_agrees(client)


def test_kill_9_of_the_worker_with_retries_left_retries_and_succeeds(
    client: Client, workspace: Path, procs: Procs, redis_url: str, tmp_path: Path
):
    markers = tmp_path / "markers"
    body = f'echo "$JOBLEDGER_ATTEMPT" >> {markers}\n[ "$JOBLEDGER_ATTEMPT" -ge 2 ] || sleep 300\n'
    client.define(definition("phoenix", job_file(workspace, "phoenix.sh", body), retries=1, timeout=10))
    procs.dispatcher()
    worker = procs.worker(redis_url)
    run_id = client.submit("phoenix")
    eventually(lambda: markers.exists(), what="the first attempt to start")
    os.killpg(worker.pid, signal.SIGKILL)
    procs.worker(redis_url)
    run = client.wait(run_id, timeout=30)
    assert run["status"] == "SUCCEEDED"
    assert [(a["status"], a["reason"]) for a in run["attempts"]] == [
        ("FAILED", "WorkerLost"),
        ("SUCCEEDED", None),
    ]
    assert markers.read_text().split() == ["1", "2"]
    _assert_log_agrees(client)


def test_a_late_outcome_from_an_attempt_declared_lost_is_refused(
    client: Client, workspace: Path, procs: Procs, redis_url: str, tmp_path: Path
):
    markers = tmp_path / "markers"
    client.define(definition("frozen", _marker_job(workspace, markers, 1), timeout=10))
    procs.dispatcher()
    worker = procs.worker(redis_url)
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
    eventually(lambda: "late outcome refused" in _logs(procs), what="the refusal to be logged")
    assert len(client.events(aggregate=run_id)) == events_after_loss
    assert client.get_run(run_id)["status"] == "FAILED"
    _assert_log_agrees(client)


def _logs(procs: Procs) -> str:
    return "".join(p.read_text() for p in procs.log_dir.glob("*.log"))


def test_the_same_rq_job_delivered_twice_runs_one_attempt(
    client: Client, workspace: Path, procs: Procs, redis_url: str, connection: redis.Redis, tmp_path: Path
):
    markers = tmp_path / "markers"
    client.define(definition("twice", _marker_job(workspace, markers)))
    run_id = client.submit("twice")
    assert client.lifecycle.queue(run_id, 1)
    enqueue_attempt(connection, "default", run_id, 1)
    enqueue_attempt(connection, "default", run_id, 1)  # the same attempt id, delivered again
    assert connection.lrange("rq:queue:default", 0, -1) == [attempt_job_id(run_id, 1).encode()] * 2
    procs.worker(redis_url, burst=True).wait(timeout=60)
    assert markers.read_text().split() == [f"{run_id}:1"]
    run = client.get_run(run_id)
    assert run["status"] == "SUCCEEDED" and len(run["attempts"]) == 1
    _assert_log_agrees(client)


def test_cancel_racing_completion_fifty_times_ends_each_run_once(client: Client, workspace: Path):
    job_file(workspace, "x.sh", "true\n")
    client.define(definition("racer", "x.sh"))
    for i in range(50):
        run_id = client.submit("racer")
        assert client.lifecycle.queue(run_id, 1)
        claim = client.lifecycle.claim(run_id, 1, "racer-worker", "host", 1)
        assert claim is not None
        outcomes: dict[str, object] = {}
        barrier = threading.Barrier(2)

        def complete(claim=claim, barrier=barrier, outcomes=outcomes) -> None:
            barrier.wait()
            outcomes["complete"] = client.lifecycle.succeed(claim)

        def cancel(run_id=run_id, barrier=barrier, outcomes=outcomes) -> None:
            barrier.wait()
            try:
                outcomes["cancel"] = client.cancel(run_id)["status"]
            except AlreadyTerminal as exc:
                outcomes["cancel"] = exc

        threads = [threading.Thread(target=complete), threading.Thread(target=cancel)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        status = client.get_run(run_id)["status"]
        if outcomes["complete"] is True:
            assert status == "SUCCEEDED" and isinstance(outcomes["cancel"], AlreadyTerminal), i
        else:
            assert status == "CANCELLED" and outcomes["cancel"] == "CANCELLED", i
    _assert_log_agrees(client)
    assert {r["status"] for r in client.list_runs(limit=None)} <= {"SUCCEEDED", "CANCELLED"}


def test_cancel_racing_real_completions_leaves_one_terminal_state_each(
    client: Client, workspace: Path, procs: Procs, redis_url: str
):
    job_file(workspace, "quick.sh", "sleep 0.05\n")
    client.define(definition("quick", "quick.sh"))
    procs.dispatcher()
    procs.worker(redis_url)
    procs.worker(redis_url)
    ids = []
    for _ in range(50):
        run_id = client.submit("quick")
        ids.append(run_id)
        eventually(lambda run_id=run_id: client.get_run(run_id)["status"] != "PENDING", what="the run to start")
        try:
            client.cancel(run_id)
        except AlreadyTerminal:
            pass
    for run_id in ids:
        assert client.wait(run_id, timeout=30)["status"] in ("SUCCEEDED", "CANCELLED")
    _assert_log_agrees(client)


def test_two_dispatchers_enqueue_each_run_once(client: Client, workspace: Path, procs: Procs, connection: redis.Redis):
    job_file(workspace, "x.sh", "true\n")
    client.define(definition("fanout", "x.sh"))
    procs.dispatcher()
    procs.dispatcher()
    ids = [client.submit("fanout") for _ in range(100)]
    eventually(lambda: all(client.get_run(i)["reason"] == "In queue" for i in ids), what="every run queued")
    queued = [j.decode() for j in connection.lrange("rq:queue:default", 0, -1)]
    assert sorted(queued) == sorted(attempt_job_id(i, 1) for i in ids)
    assert len(client.events(type="RunQueued")) == 100
    _assert_log_agrees(client)


def test_the_plain_fleet_command_executes_a_submitted_run(
    client: Client, workspace: Path, procs: Procs, redis_url: str
):
    job_file(workspace, "x.sh", "echo from the fleet\n")
    client.define(definition("fleet", "x.sh"))
    procs.dispatcher()
    run_id = client.submit("fleet")
    eventually(lambda: client.get_run(run_id)["reason"] == "In queue", what="the run to be queued")
    assert procs.worker(redis_url, burst=True).wait(timeout=60) == 0
    assert client.get_run(run_id)["status"] == "SUCCEEDED"
    assert [line.line for line in client.logs(run_id)] == ["from the fleet"]


@pytest.mark.parametrize("payload", ["foreign-callable", "pickle"])
def test_a_hostile_rq_job_is_refused_without_running(
    payload: str, procs: Procs, redis_url: str, connection: redis.Redis, tmp_path: Path
):
    marker = tmp_path / "pwned"
    queue = Queue("default", connection=connection, serializer=JobSerializer)
    if payload == "foreign-callable":
        # A JSON job naming os.system: JSON is fine, the callable is not.
        job = queue.enqueue_call("os.system", args=(f"touch {marker}",), job_id="hostile")
    else:
        job = queue.enqueue_call("workers.attempt.run_attempt", args=("r", 1), job_id="hostile")

        class Boom:
            def __reduce__(self):
                return (os.system, (f"touch {marker}",))

        connection.hset("rq:job:hostile", "data", zlib.compress(pickle.dumps(Boom())))
    assert job.id == "hostile"
    assert procs.worker(redis_url, burst=True).wait(timeout=60) == 0
    assert not marker.exists()
    assert connection.hget("rq:job:hostile", "status") == b"failed"
    logs = _logs(procs)
    assert "rejected_callable" in logs or "not JSON" in logs
    assert f"touch {marker}" not in logs  # the refusal does not echo the payload


def test_an_attempt_rq_lost_is_re_enqueued_under_the_same_job_id(
    client: Client, workspace: Path, procs: Procs, redis_url: str, connection: redis.Redis, tmp_path: Path
):
    markers = tmp_path / "markers"
    client.define(definition("lost", _marker_job(workspace, markers)))
    procs.dispatcher()
    run_id = client.submit("lost")
    eventually(lambda: client.get_run(run_id)["reason"] == "In queue", what="the run to be queued")
    connection.delete("rq:queue:default")  # RQ loses the job between pop and start
    eventually(lambda: connection.llen("rq:queue:default") == 1, timeout=30, what="the reconciler")
    assert connection.lrange("rq:queue:default", 0, -1) == [attempt_job_id(run_id, 1).encode()]
    procs.worker(redis_url, burst=True).wait(timeout=60)
    assert client.get_run(run_id)["status"] == "SUCCEEDED"
    assert markers.read_text().split() == [f"{run_id}:1"]
    _assert_log_agrees(client)
