"""The worker runs jobledger's entry function only: callables named in an edited RQ job hash are never imported.

Each foreign name points at a module that writes a marker file when imported; the worker can import it
(it is on the worker's PYTHONPATH), so a missing marker proves the worker never tried.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from rq.job import Job
from rq.queue import Queue
from rq.registry import FailedJobRegistry, StartedJobRegistry

from scheduler.rq_jobs import enqueue_attempt
from tests.support.processes import Procs, eventually
from workers.serializer import JobSerializer

MARKER_MODULE = """
import os
from pathlib import Path
Path(os.environ["MARKER_FILE"]).write_text("imported")


def hook(*args, **kwargs):
    Path(os.environ["MARKER_FILE"]).write_text("called")
"""
HOOK = "jl_marker_hook.hook"


@pytest.fixture
def marked(tmp_path: Path, procs: Procs) -> Path:
    """A worker environment where ``jl_marker_hook`` is importable and would leave ``marker`` behind."""
    folder = tmp_path / "importable"
    folder.mkdir()
    (folder / "jl_marker_hook.py").write_text(MARKER_MODULE)
    marker = tmp_path / "marker"
    procs.env = {
        **procs.env,
        "PYTHONPATH": f"{folder}:{procs.env.get('PYTHONPATH', '')}",
        "MARKER_FILE": str(marker),
        "JOBLEDGER_SANDBOX": "off",  # what is tested is the worker's own process, not the job's
    }
    return marker


def _attempt_job(connection: redis.Redis, run_id: str) -> Job:
    enqueue_attempt(connection, "default", run_id, 1)
    return Job.fetch(f"{run_id}-1", connection=connection, serializer=JobSerializer)


def _refused(connection: redis.Redis, procs: Procs, redis_url: str, job_ids: list[str]) -> str:
    """Run a burst worker over the queue; the worker's log once every job is in the failed registry."""
    worker = procs.worker(redis_url, burst=True)
    failed = FailedJobRegistry("default", connection=connection, serializer=JobSerializer)
    eventually(lambda: set(job_ids) <= set(failed.get_job_ids()), what="the jobs failed")
    worker.wait(timeout=30)
    return "\n".join(p.read_text() for p in procs.log_dir.glob("worker-*.log"))


@pytest.mark.parametrize("field", ["success_callback_name", "failure_callback_name", "stopped_callback_name"])
def test_a_job_hash_naming_a_callback_is_refused_logged_once_and_the_callback_never_imported(
    field: str, marked: Path, connection: redis.Redis, procs: Procs, redis_url: str
):
    job = _attempt_job(connection, "run-with-callback")
    connection.hset(job.key, field, HOOK)
    log = _refused(connection, procs, redis_url, [job.id])
    assert not marked.exists()
    assert log.count(f"refused RQ job {job.id}") == 1
    assert "attempt not claimed" not in log  # run_attempt itself was never called


def test_a_foreign_callable_is_refused_and_never_imported_even_with_a_failure_callback(
    marked: Path, connection: redis.Redis, procs: Procs, redis_url: str
):
    queue = Queue("default", connection=connection, serializer=JobSerializer)
    alone = queue.enqueue_call(HOOK, args=("x", 1), job_id="foreign-1")
    hooked = queue.enqueue_call(HOOK, args=("x", 1), job_id="foreign-2")
    connection.hset(hooked.key, "failure_callback_name", HOOK)
    log = _refused(connection, procs, redis_url, [alone.id, hooked.id])
    assert not marked.exists()
    assert log.count(f"refused RQ job {alone.id}") == log.count(f"refused RQ job {hooked.id}") == 1
    assert "is not workers.attempt.run_attempt" in log


def test_a_job_with_dependencies_dependents_or_webhooks_is_refused(
    marked: Path, connection: redis.Redis, procs: Procs, redis_url: str
):
    depending = _attempt_job(connection, "run-depending")
    connection.hset(depending.key, "dependency_ids", '["other-job"]')
    with_dependents = _attempt_job(connection, "run-with-dependents")
    connection.sadd(with_dependents.dependents_key, "planted-job")
    hooked = _attempt_job(connection, "run-with-webhook")
    connection.hset(hooked.key, "webhooks", '[{"url": "http://127.0.0.1:9/x", "job_status": "finished"}]')
    ids = [depending.id, with_dependents.id, hooked.id]
    log = _refused(connection, procs, redis_url, ids)
    for job_id in ids:
        assert log.count(f"refused RQ job {job_id}") == 1
    assert "attempt not claimed" not in log


def test_an_abandoned_job_with_a_failure_callback_is_cleaned_up_without_importing_it(
    marked: Path, connection: redis.Redis, procs: Procs, redis_url: str
):
    job = _attempt_job(connection, "run-abandoned")
    connection.hset(job.key, "failure_callback_name", HOOK)
    connection.lrem("rq:queue:default", 0, job.id)
    started = StartedJobRegistry("default", connection=connection, serializer=JobSerializer)
    connection.zadd(started.key, {f"{job.id}:exec-1": time.time() - 3600})  # expired an hour ago
    worker = procs.worker(redis_url, burst=True)  # its registry upkeep at start finds the abandoned job
    failed = FailedJobRegistry("default", connection=connection, serializer=JobSerializer)
    eventually(lambda: job.id in failed.get_job_ids(), what="the abandoned job failed")
    worker.wait(timeout=30)
    assert not marked.exists()
