"""Row 47: a worker whose clock runs an hour ahead claims an attempt and dies; it is reaped on the lease's time.

The worker stamps the attempt's start with its own clock, an hour in the future for the dispatcher. The
reaper used to wait until that start was a lease's length in the past by the dispatcher's clock: an hour.
It now trusts only the lease, which expires by the store's clock. Likewise a retry's delay, stamped as a
time by a failing worker an hour ahead, is waited out as a duration, not for an hour.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from queue_core import Client
from queue_core.cli.fleet import fleet_command
from queue_core.timefmt import parse_utc
from tests.support.faults import assert_log_holds, marker_job
from tests.support.jobs import definition
from tests.support.processes import Procs, eventually

SKEWED_WORKER = Path(__file__).parent.parent / "support" / "skewed_worker.py"
AN_HOUR = 3600


def skewed_worker(procs: Procs, url: str, seconds: float) -> subprocess.Popen[bytes]:
    """A real ``rq worker`` (the fleet command) whose wall clock runs ``seconds`` ahead."""
    command = fleet_command(url, "default")[1:]
    return procs.spawn([sys.executable, str(SKEWED_WORKER), str(seconds), *command], "skewed-worker")


def test_a_worker_an_hour_ahead_that_dies_mid_attempt_is_reaped_when_its_lease_expires(
    client: Client, workspace: Path, procs: Procs, redis_url: str, tmp_path: Path
):
    markers = tmp_path / "markers"
    client.define(definition("skewed", marker_job(workspace, markers, "exec sleep 300"), timeout=10))
    procs.dispatcher()
    worker = skewed_worker(procs, redis_url, AN_HOUR)
    run_id = client.submit("skewed")
    eventually(markers.exists, what="the attempt to start")
    started = parse_utc(client.get_run(run_id)["attempts"][0]["started_at"])
    assert started > datetime.now(UTC) + timedelta(seconds=AN_HOUR - 60)  # stamped by the worker's clock
    os.killpg(worker.pid, signal.SIGKILL)
    run = client.wait(run_id, timeout=30)  # the test's lease is 2 s: reaped in seconds, not in an hour
    assert (run["status"], run["reason"]) == ("FAILED", "WorkerLost")
    assert_log_holds(client, [run_id], markers)


def test_a_retry_decided_by_a_worker_an_hour_ahead_waits_its_delay_not_the_hour(
    client: Client, workspace: Path, procs: Procs, redis_url: str, tmp_path: Path
):
    markers = tmp_path / "markers"
    body = marker_job(workspace, markers, '[ "$JOBLEDGER_ATTEMPT" -ge 2 ]', "second-time.sh")
    client.define(definition("second-time", body, retries=1, delay=0.02))  # 1.2 s between attempts
    procs.dispatcher()
    skewed_worker(procs, redis_url, AN_HOUR)
    run_id = client.submit("second-time")
    run = client.wait(run_id, timeout=30)
    assert run["status"] == "SUCCEEDED"
    assert [a["status"] for a in run["attempts"]] == ["FAILED", "SUCCEEDED"]
    assert_log_holds(client, [run_id], markers)
