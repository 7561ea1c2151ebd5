"""Rows 14 and 15: Redis goes away while a job runs: killed and restarted (14), or hung by SIGSTOP (15).

The worker and the dispatcher wait for the store rather than die. The job runs on; its output lines are
kept; its outcome's append is retried with the same event ids until Redis answers, so the run ends
once: ``RunSucceeded``, or, if the reaper found the lease expired first, ``WorkerLost`` and a retry.
Meanwhile the CLI and the Python client fail fast with a one-line ``store unavailable`` (exit 4).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from queue_core import Client, Settings, StoreUnavailable
from tests.support.faults import assert_log_holds, marks
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs, eventually, pid_alive
from tests.support.redis_server import RedisServer


def _job(workspace: Path, markers: Path, done: Path) -> str:
    body = f'echo "$JOBLEDGER_RUN_ID:$JOBLEDGER_ATTEMPT" >> {markers}\necho working\nsleep 2\necho done\ntouch {done}\n'
    return job_file(workspace, "steady.sh", body)


def test_redis_killed_during_a_job_and_back_after_it_ended_records_the_run_once(
    client: Client, workspace: Path, procs: Procs, redis_url: str, store_server: RedisServer, tmp_path: Path
):
    markers, done = tmp_path / "markers", tmp_path / "done"
    client.define(definition("steady", _job(workspace, markers, done), retries=1, timeout=10))
    (dispatcher,), (worker,) = procs.fleet(redis_url)
    run_id = client.submit("steady")
    eventually(lambda: markers.exists(), what="the job to start")
    store_server.kill()
    eventually(lambda: done.exists(), what="the job to end while Redis is away")
    store_server.start()
    run = client.wait(run_id, timeout=60)
    assert run["status"] == "SUCCEEDED"
    assert run["attempts"][-1]["status"] == "SUCCEEDED"
    if len(run["attempts"]) == 1:  # the outcome landed before the reaper looked: the output was kept too
        assert [line.line for line in client.logs(run_id)] == ["working", "done"]
    assert pid_alive(worker.pid) and pid_alive(dispatcher.pid)  # they waited for the store
    assert_log_holds(client, [run_id], markers)
    assert len(marks(markers)) == len(run["attempts"])


def test_a_hung_redis_makes_commands_fail_fast_and_the_running_job_ends_once(
    client: Client,
    workspace: Path,
    procs: Procs,
    redis_url: str,
    store_server: RedisServer,
    settings: Settings,
    tmp_path: Path,
):
    markers, done = tmp_path / "markers", tmp_path / "done"
    client.define(definition("steady", _job(workspace, markers, done), retries=1, timeout=10))
    procs.fleet(redis_url)
    run_id = client.submit("steady")
    eventually(lambda: markers.exists(), what="the job to start")
    procs.env["JOBLEDGER_STORE_TIMEOUT_SECONDS"] = "1"
    assert store_server.process is not None
    os.kill(store_server.process.pid, signal.SIGSTOP)
    try:
        submitted = procs.cli("submit", "steady", "--idempotency-key", "during-the-outage", timeout=30)
        cancelled = procs.cli("cancel", run_id, timeout=30)
        for answer in (submitted, cancelled):
            assert answer.returncode == 4
            assert answer.stderr.startswith("jobledger: store unavailable: no answer in time")
            assert answer.stderr.count("\n") == 1 and "Traceback" not in answer.stderr
        try:
            Client(settings=Settings(**{**settings.__dict__, "store_timeout_seconds": 1.0}))
            raise AssertionError("a client was made against a hung store")
        except StoreUnavailable as exc:
            assert str(exc).startswith("store unavailable: ")
    finally:
        os.kill(store_server.process.pid, signal.SIGCONT)
    # Neither command was acknowledged; each may have landed when Redis woke up (it had read them).
    again = procs.cli("submit", "steady", "--idempotency-key", "during-the-outage")
    assert again.returncode == 0, again.stderr
    second = again.stdout.strip()
    for run in (run_id, second):
        assert client.wait(run, timeout=60)["status"] in ("SUCCEEDED", "CANCELLED", "FAILED")
    assert len(client.events(type="NameClaimed")) == 2  # the definition's name and the one idempotency key
    assert_log_holds(client, [run_id, second], markers)
