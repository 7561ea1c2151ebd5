"""An array's children go on RQ a chunk to a job: where the reconciler finds them, and a chunk's long child."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from rq import Queue

from queue_core import Client
from queue_core.domain.arrays import child_id
from queue_core.services.lifecycle import attempt_job_id
from scheduler.rq_jobs import CHUNK_SIZE, MIN_CHUNKED, QUEUED, chunk_job_id, enqueue_first_attempts, where_many
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs, eventually
from workers.serializer import JobSerializer


def test_a_big_arrays_children_go_on_rq_in_aligned_chunks_and_each_is_found_in_its_chunk(connection: redis.Redis):
    parent, size = "00000000-0000-4000-8000-00000000000a", MIN_CHUNKED + 5
    children = [child_id(parent, i) for i in range(size)]
    enqueue_first_attempts(connection, "default", children)
    queue = Queue("default", connection=connection, serializer=JobSerializer)
    chunks = sorted({chunk_job_id(c) for c in children})
    assert sorted(queue.job_ids) == chunks and len(chunks) == -(-size // CHUNK_SIZE)
    places = where_many(connection, [("default", c, 1) for c in children])
    assert set(places.values()) == {QUEUED}
    assert where_many(connection, [("default", child_id(parent, size), 1)]) == {(child_id(parent, size), 1): None}

    # Windows of a bigger array: a chunk only partly in a window is not made; its other children go alone.
    other, size = "00000000-0000-4000-8000-00000000000b", CHUNK_SIZE
    edge = 2 * size + size // 2  # the windows meet inside the third chunk
    first, second = ([child_id(other, i) for i in window] for window in (range(edge), range(edge, 2 * edge)))
    enqueue_first_attempts(connection, "default", first)
    enqueue_first_attempts(connection, "default", second)
    ids = set(queue.job_ids)
    # The first window is the array's start: its part of the third chunk is a chunk; the second's goes alone.
    assert chunk_job_id(child_id(other, 2 * size)) in ids and attempt_job_id(child_id(other, edge + 1), 1) in ids
    assert chunk_job_id(child_id(other, 3 * size)) in ids and attempt_job_id(child_id(other, edge - 1), 1) not in ids
    everyone = [("default", c, 1) for c in first + second]
    assert set(where_many(connection, everyone).values()) == {QUEUED}
    small = [child_id("00000000-0000-4000-8000-00000000000c", i) for i in range(MIN_CHUNKED - 1)]
    enqueue_first_attempts(connection, "default", small)
    assert {attempt_job_id(c, 1) for c in small} <= set(queue.job_ids)  # a small array: each child alone


@pytest.mark.fleet(workers=1)
def test_a_chunks_long_child_hands_its_siblings_back_and_a_cancel_keeps_them_from_starting(
    client: Client, workspace: Path, fleet: Procs, connection: redis.Redis
):
    job_file(workspace, "first-hangs.sh", '[ "$JOBLEDGER_ARRAY_INDEX" = 0 ] && exec sleep 300\nexit 0\n')
    client.define(definition("first-hangs", "first-hangs.sh", timeout=5.0))
    parent = client.submit("first-hangs", array=MIN_CHUNKED)
    queue = Queue("default", connection=connection, serializer=JobSerializer)
    # Child 0 runs long: its chunk's other children go back on the queue, each as its own attempt.
    handed = {attempt_job_id(child_id(parent, i), 1) for i in range(1, CHUNK_SIZE)}
    eventually(lambda: handed <= set(queue.job_ids), timeout=30, what="the siblings handed back")
    assert client.get_run(child_id(parent, 0))["status"] == "RUNNING"

    cancelled = client.cancel(parent)
    assert cancelled["status"] == "CANCELLED"
    children = [client.get_run(child_id(parent, i)) for i in range(MIN_CHUNKED)]
    assert {c["status"] for c in children} == {"CANCELLED"}
    eventually(lambda: queue.count == 0, timeout=30, what="queue drained")
    started = [e.aggregate for e in client.events(type="RunStarted") if e.aggregate.startswith(parent)]
    assert started == [child_id(parent, 0)]  # the one running was killed; none of the others ever started
    checked = fleet.cli("check", "--ended")
    assert checked.returncode == 0, checked.stdout + checked.stderr


# Leases of two minutes: a lease gone within the test was released, not left to expire.
@pytest.mark.fleet(workers=1, env={"JOBLEDGER_LEASE_SECONDS": "120"})
def test_a_chunks_children_leave_no_lease_behind_once_it_ends(
    client: Client, workspace: Path, fleet: Procs, connection: redis.Redis
):
    client.define(definition("short", job_file(workspace, "short.sh", "true\n")))
    parent = client.submit("short", array=MIN_CHUNKED)
    assert client.wait(parent, timeout=60)["status"] == "SUCCEEDED"
    leases = [client.store.keys.lease(child_id(parent, i), 1) for i in range(MIN_CHUNKED)]
    # Released together as each chunk ends (just after its last child's outcome is recorded).
    eventually(lambda: connection.exists(*leases) == 0, timeout=30, what="the chunks' leases released")
    assert connection.exists(*[client.store.keys.deliveries(child_id(parent, i), 1) for i in range(MIN_CHUNKED)])
