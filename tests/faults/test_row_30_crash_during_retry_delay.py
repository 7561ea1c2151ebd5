"""Row 30: everything that acts on a run is killed while the run waits out its retry delay.

The failed attempt's ``RunRetryScheduled`` names the earliest time of the next one; the retry itself sits
in rq-scheduler's sorted set in Redis. After ``kill -9`` of the dispatcher (jobledger's scheduler and
orchestrator in one) and the worker, new ones pick the run up: exactly one next attempt, not before the
delay is over, and never more attempts than ``numRetries + 1``.
"""

from __future__ import annotations

import os
import signal
from datetime import datetime
from pathlib import Path

from queue_core import Client
from tests.support.faults import assert_log_holds, marks
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs, eventually

DELAY_MINUTES = 3 / 60


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_killing_dispatcher_and_worker_during_the_retry_delay_gives_exactly_one_next_attempt_after_it(
    client: Client, workspace: Path, procs: Procs, redis_url: str, tmp_path: Path
):
    markers = tmp_path / "markers"
    body = f'echo "$JOBLEDGER_RUN_ID:$JOBLEDGER_ATTEMPT" >> {markers}\n[ "$JOBLEDGER_ATTEMPT" -ge 2 ]\n'
    client.define(definition("again", job_file(workspace, "again.sh", body), retries=1, delay=DELAY_MINUTES))
    first = procs.fleet(redis_url)
    run_id = client.submit("again")
    (scheduled,) = eventually(lambda: client.events(aggregate=run_id, type="RunRetryScheduled"), what="the retry")
    for proc in (*first.dispatchers, *first.workers):
        os.killpg(proc.pid, signal.SIGKILL)
    procs.fleet(redis_url)
    run = client.wait(run_id, timeout=60)
    assert [(a["status"], a["reason"]) for a in run["attempts"]] == [("FAILED", "NonZeroExitCode"), ("SUCCEEDED", None)]
    started = client.events(aggregate=run_id, type="RunStarted")
    assert [e.event.attempt for e in started] == [1, 2]
    assert _when(started[1].time) >= _when(scheduled.event.not_before)
    assert marks(markers) == [f"{run_id}:1", f"{run_id}:2"]
    assert_log_holds(client, [run_id], markers)
