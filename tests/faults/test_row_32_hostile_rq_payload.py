"""Row 32: a hostile job planted in Redis: a pickle whose loading runs code, or a JSON job naming ``os.system``.

The fleet's serializer is JSON only and accepts only ``workers.attempt.run_attempt(run_id, attempt)``: the
worker refuses the job in RQ's failure path without running it (``rejected_callable``, or "not JSON" for
a pickle, never loaded), and its refusal is logged without the payload.
"""

from __future__ import annotations

import os
import pickle
import zlib
from pathlib import Path

import pytest
import redis
from rq import Queue

from queue_core.eventlog.store import EventStore
from tests.support.faults import assert_log_holds
from tests.support.processes import Procs
from workers.serializer import JobSerializer


@pytest.mark.parametrize("payload", ["foreign-callable", "pickle"])
def test_a_hostile_rq_job_is_refused_without_running(
    payload: str, procs: Procs, redis_url: str, connection: redis.Redis, tmp_path: Path
):
    marker = tmp_path / "pwned"
    queue = Queue("default", connection=connection, serializer=JobSerializer)
    if payload == "foreign-callable":
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
    logs = "".join(p.read_text() for p in procs.log_dir.glob("*.log"))
    assert "rejected_callable" in logs or "not JSON" in logs
    assert f"touch {marker}" not in logs  # the refusal does not echo the payload
    assert_log_holds(EventStore(connection))
