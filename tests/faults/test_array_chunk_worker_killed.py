"""An array's children run a chunk to an RQ job; the chunk's worker is killed (kill -9) mid-chunk.

The child running then is ``WorkerLost`` once its lease expires (and retried); the chunk's children that had
not started are queued again by the reconciler, each as its own attempt, once their leases have expired:
every child ends once, and no job code runs twice for one attempt.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from queue_core import Client, NotFound
from queue_core.domain.arrays import child_id
from scheduler.rq_jobs import MIN_CHUNKED
from tests.support.faults import assert_log_holds, marks
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs, eventually
from tests.support.runs import stdout_lines
from tests.support.sandbox import needs_bwrap

SIZE = MIN_CHUNKED + 5  # chunked: two whole chunks and the last one


@pytest.mark.parametrize("sandbox", ["off", pytest.param("on", marks=needs_bwrap)])
def test_kill_9_of_a_chunks_worker_mid_chunk_ends_every_child_once(
    sandbox: str, client: Client, workspace: Path, procs: Procs, redis_url: str, tmp_path: Path
):
    procs.env["JOBLEDGER_SANDBOX"] = sandbox  # on: the chunk's children share its sandbox, killed with the worker
    markers = tmp_path / "markers"  # written by job code outside Redis where it may (not from the sandbox)
    # Each execution says which attempt it is; child 3's first attempt then hangs: the worker is killed then.
    body = f"""echo "$JOBLEDGER_RUN_ID:$JOBLEDGER_ATTEMPT"; echo "$JOBLEDGER_RUN_ID:$JOBLEDGER_ATTEMPT" >> {markers}
[ "$JOBLEDGER_ARRAY_INDEX$JOBLEDGER_ATTEMPT" = 31 ] && exec sleep 300
exit 0
"""
    client.define(definition("chunked", job_file(workspace, "chunked.sh", body), retries=1, timeout=10))
    fleet = procs.fleet(redis_url)
    (worker,) = fleet.workers
    parent = client.submit("chunked", array=SIZE)
    third = child_id(parent, 3)
    eventually(lambda: _said(client, third) == [f"{third}:1"], what="child 3 to run")
    os.killpg(worker.pid, signal.SIGKILL)
    procs.worker(redis_url)

    run = client.wait(parent, timeout=60)
    assert run["status"] == "SUCCEEDED" and run["array"]["counts"]["SUCCEEDED"] == SIZE
    attempts = client.get_run(third)["attempts"]
    assert [(a["status"], a["reason"]) for a in attempts] == [("FAILED", "WorkerLost"), ("SUCCEEDED", None)]
    children = [child_id(parent, i) for i in range(SIZE)]
    assert all(len(client.get_run(c)["attempts"]) == 1 for c in children if c != third)
    # Job code ran once per attempt: each child's first attempt once, child 3's second once.
    executions = sorted([f"{c}:1" for c in children] + [f"{third}:2"])
    assert sorted(line for c in children for line in stdout_lines(client, c)) == executions
    if sandbox == "off":
        assert sorted(marks(markers)) == executions
    assert_log_holds(client, [parent, *children], markers)
    # The dead worker's chunk folder (the shared sandbox's), removed by the next worker; the others with their chunk.
    eventually(lambda: not list((tmp_path / "home" / "runs").glob("chunk-*")), what="no chunk folder left")
    checked = procs.cli("check", "--ended")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _said(client: Client, run_id: str) -> list[str]:
    try:
        return stdout_lines(client, run_id)
    except NotFound:  # not submitted yet
        return []
