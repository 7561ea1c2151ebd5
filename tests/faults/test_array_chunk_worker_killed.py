"""An array's children run a chunk to an RQ job; the chunk's worker is killed (kill -9) mid-chunk.

The child running then is ``WorkerLost`` once its lease expires (and retried); the chunk's children that had
not started are queued again by the reconciler, each as its own attempt, once their leases have expired:
every child ends once, and no job code runs twice for one attempt.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from queue_core import Client
from queue_core.domain.arrays import child_id
from scheduler.rq_jobs import MIN_CHUNKED
from tests.support.faults import assert_log_holds, marker_job, marks
from tests.support.jobs import definition
from tests.support.processes import Procs, eventually

SIZE = MIN_CHUNKED + 5  # chunked: two whole chunks and the last one


def test_kill_9_of_a_chunks_worker_mid_chunk_ends_every_child_once(
    client: Client, workspace: Path, procs: Procs, redis_url: str, tmp_path: Path
):
    markers = tmp_path / "markers"
    stuck = markers.with_name("stuck")
    # Child 3's first attempt leaves a second marker and hangs: the worker is killed while it runs.
    then = f'[ "$JOBLEDGER_ARRAY_INDEX$JOBLEDGER_ATTEMPT" = 31 ] && touch {stuck} && exec sleep 300; exit 0'
    client.define(definition("chunked", marker_job(workspace, markers, then), retries=1, timeout=10))
    fleet = procs.fleet(redis_url)
    (worker,) = fleet.workers
    parent = client.submit("chunked", array=SIZE)
    eventually(stuck.exists, what="child 3 to run")
    os.killpg(worker.pid, signal.SIGKILL)
    procs.worker(redis_url)

    run = client.wait(parent, timeout=60)
    assert run["status"] == "SUCCEEDED" and run["array"]["counts"]["SUCCEEDED"] == SIZE
    third = client.get_run(child_id(parent, 3))
    assert [(a["status"], a["reason"]) for a in third["attempts"]] == [("FAILED", "WorkerLost"), ("SUCCEEDED", None)]
    children = [child_id(parent, i) for i in range(SIZE)]
    assert all(len(client.get_run(c)["attempts"]) == 1 for c in children if c != third["id"])
    # Job code ran once per attempt: each child's first attempt once, child 3's second once.
    assert sorted(marks(markers)) == sorted([f"{c}:1" for c in children] + [f"{third['id']}:2"])
    assert_log_holds(client, [parent, *children], markers)
    checked = procs.cli("check", "--ended")
    assert checked.returncode == 0, checked.stdout + checked.stderr
