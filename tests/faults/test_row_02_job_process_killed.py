"""Row 2: the job's process (RQ's work-horse; here the attempt's child) dies of SIGKILL, as from the OOM killer.

The worker sees its child killed by signal 9: the attempt fails ``NonZeroExitCode`` with exit code 137 and
"killed by signal 9", within the worker's own poll; it is retried per the retry strategy; the worker lives on.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from queue_core import Client
from tests.support.faults import assert_log_holds, marks
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs, children_of, eventually, pid_alive


def test_a_sigkilled_job_fails_its_attempt_with_signal_9_is_retried_and_the_worker_lives(
    client: Client, workspace: Path, procs: Procs, redis_url: str, tmp_path: Path
):
    markers = tmp_path / "markers"
    body = f'echo "$JOBLEDGER_RUN_ID:$JOBLEDGER_ATTEMPT" >> {markers}\n[ "$JOBLEDGER_ATTEMPT" -ge 2 ] || sleep 300\n'
    client.define(definition("oom", job_file(workspace, "oom.sh", body), retries=1, timeout=10))
    (worker,) = procs.fleet(redis_url).workers
    run_id = client.submit("oom")
    eventually(lambda: markers.exists(), what="the first attempt to start")
    (job,) = eventually(lambda: children_of(worker.pid), what="the job's process")
    os.kill(job, signal.SIGKILL)
    run = client.wait(run_id, timeout=30)
    assert run["status"] == "SUCCEEDED"
    first, second = run["attempts"]
    assert (first["status"], first["reason"], first["exit_code"]) == ("FAILED", "NonZeroExitCode", 137)
    failed = next(e for e in client.events(aggregate=run_id) if e.type == "RunAttemptFailed")
    assert failed.event.message == "killed by signal 9"
    assert (second["status"], second["worker"]) == ("SUCCEEDED", first["worker"])  # the same worker, alive
    assert pid_alive(worker.pid)
    assert marks(markers) == [f"{run_id}:1", f"{run_id}:2"]
    assert_log_holds(client, [run_id], markers)
