"""Rows 24-26: racing writers and duplicate deliveries, settled by each aggregate's expected version.

Row 24: a cancel and a completion race for the same run, from two processes, 300 times: each run ends
once, the loser is told (the cancel with ``AlreadyTerminal`` naming the winner's state; the completion
is refused) and the run's status is the winner's.

Row 25: two processes submit with the same idempotency key at the same moment: one ``RunSubmitted``,
both callers get its run id, and it is queued as one RQ job.

Row 26: the same attempt delivered twice (and two dispatchers reacting to every event): the first
delivery's claim wins, the second sees the run moved and runs no job code.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import redis

from queue_core import Client, Settings
from queue_core.errors import AlreadyTerminal
from queue_core.services.lifecycle import Claim, attempt_job_id
from scheduler.rq_jobs import enqueue_attempt
from tests.support.faults import assert_log_holds, marker_job, marks
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs, eventually

RACES = 300
KEYS = 50


def _cancel_or_complete(settings: Settings, role: str, run_ids: list[str], barrier: Any, results: Any) -> None:
    client = Client(settings=settings)
    outcomes = {}
    for run_id in run_ids:
        if role == "complete":
            doc, version = client.lifecycle.load(run_id)
            claim = Claim(doc, 1, version)  # what the worker holds: the run as it claimed it
            barrier.wait(timeout=60)
            outcomes[run_id] = "won" if client.lifecycle.succeed(claim) else "refused"
        else:
            barrier.wait(timeout=60)
            try:
                client.cancel(run_id)
                outcomes[run_id] = "won"
            except AlreadyTerminal as exc:
                outcomes[run_id] = exc.status
    results.put((role, outcomes))


def test_cancel_racing_completion_from_two_processes_ends_each_run_once(client: Client, workspace: Path):
    client.define(definition("racer", job_file(workspace, "x.sh", "true\n")))
    run_ids = []
    for _ in range(RACES):
        run_id = client.submit("racer")
        assert client.lifecycle.queue(run_id, 1)
        assert client.lifecycle.claim(run_id, 1, "racer-worker", "host", 1)
        run_ids.append(run_id)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    racers = [
        context.Process(target=_cancel_or_complete, args=(client.settings, role, run_ids, barrier, results))
        for role in ("cancel", "complete")
    ]
    for racer in racers:
        racer.start()
    outcomes = dict(results.get(timeout=120) for _ in racers)
    for racer in racers:
        racer.join(timeout=30)
    assert [racer.exitcode for racer in racers] == [0, 0]
    wins = {"SUCCEEDED": 0, "CANCELLED": 0}
    for run_id in run_ids:
        status = client.get_run(run_id)["status"]
        wins[status] += 1
        if outcomes["complete"][run_id] == "won":
            assert (status, outcomes["cancel"][run_id]) == ("SUCCEEDED", "SUCCEEDED")  # told the winner's state
        else:
            assert (status, outcomes["cancel"][run_id]) == ("CANCELLED", "won")
    print(f"of {RACES} races: {wins}")
    assert_log_holds(client, run_ids)


def test_cancel_racing_real_completions_leaves_one_terminal_state_each(
    client: Client, workspace: Path, procs: Procs, redis_url: str
):
    job_file(workspace, "quick.sh", "sleep 0.05\n")
    client.define(definition("quick", "quick.sh"))
    procs.fleet(redis_url, workers=2)
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
    assert_log_holds(client, ids)


def _submit_keys(settings: Settings, barrier: Any, results: Any) -> None:
    client = Client(settings=settings)
    got = {}
    for i in range(KEYS):
        barrier.wait(timeout=60)
        got[f"key-{i}"] = client.submit("once", idempotency_key=f"key-{i}")
    results.put(got)


def test_two_processes_submitting_one_idempotency_key_at_once_make_one_run_and_one_rq_job(
    client: Client, workspace: Path, procs: Procs, connection: redis.Redis
):
    client.define(definition("once", job_file(workspace, "x.sh", "true\n")))
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    submitters = [context.Process(target=_submit_keys, args=(client.settings, barrier, results)) for _ in range(2)]
    for submitter in submitters:
        submitter.start()
    first, second = (results.get(timeout=120) for _ in submitters)
    for submitter in submitters:
        submitter.join(timeout=30)
    assert first == second and len(set(first.values())) == KEYS
    assert len(client.events(type="RunSubmitted")) == KEYS
    procs.dispatcher()
    eventually(lambda: connection.llen("rq:queue:default") == KEYS, what="every run queued")
    queued = sorted(j.decode() for j in connection.lrange("rq:queue:default", 0, -1))
    assert queued == sorted(attempt_job_id(run_id, 1) for run_id in first.values())
    assert_log_holds(client, first.values(), ended=False)


def test_the_same_rq_job_delivered_twice_runs_one_attempt(
    client: Client, workspace: Path, procs: Procs, redis_url: str, connection: redis.Redis, tmp_path: Path
):
    markers = tmp_path / "markers"
    client.define(definition("twice", marker_job(workspace, markers)))
    run_id = client.submit("twice")
    assert client.lifecycle.queue(run_id, 1)
    enqueue_attempt(connection, "default", run_id, 1)
    enqueue_attempt(connection, "default", run_id, 1)  # the same attempt id, delivered again
    assert connection.lrange("rq:queue:default", 0, -1) == [attempt_job_id(run_id, 1).encode()] * 2
    procs.worker(redis_url, burst=True).wait(timeout=60)
    assert marks(markers) == [f"{run_id}:1"]
    run = client.get_run(run_id)
    assert run["status"] == "SUCCEEDED" and len(run["attempts"]) == 1
    assert_log_holds(client, [run_id], markers)


def test_two_dispatchers_enqueue_each_run_once(client: Client, workspace: Path, procs: Procs, connection: redis.Redis):
    client.define(definition("fanout", job_file(workspace, "x.sh", "true\n")))
    procs.dispatcher()
    procs.dispatcher()
    ids = [client.submit("fanout") for _ in range(100)]
    eventually(lambda: all(client.get_run(i)["reason"] == "In queue" for i in ids), what="every run queued")
    queued = [j.decode() for j in connection.lrange("rq:queue:default", 0, -1)]
    assert sorted(queued) == sorted(attempt_job_id(i, 1) for i in ids)
    assert len(client.events(type="RunQueued")) == 100
    assert_log_holds(client, ids, ended=False)
