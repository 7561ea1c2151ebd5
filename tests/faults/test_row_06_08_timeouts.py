"""Rows 6-8: an attempt past its timeout, enforced by the worker on the job's whole process group.

The worker sends SIGTERM to the job's session at the deadline and SIGKILL after the kill grace
(``JOBLEDGER_KILL_GRACE_SECONDS``), not through SIGALRM or RQ's job timeout (RQ's is off: ``-1``).
The attempt fails ``Timeout`` with "timeout after Ns", retried only if ``retryOnTimeout``.
A job that ignores SIGTERM is killed at timeout + grace and its message says so. Every process of
the attempt's session goes with it; a process that makes itself a new session (``setsid``) leaves
the attempt, and holding those too would need cgroups.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from queue_core import Client
from tests.support.faults import assert_log_holds
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs, eventually, process_table

ONE_SECOND = 1 / 60  # timeouts are in minutes


def _failure_messages(client: Client, run_id: str) -> list[str]:
    return [e.event.message for e in client.events(aggregate=run_id) if e.type == "RunAttemptFailed"]


@pytest.mark.parametrize("retry_on_timeout", [False, True])
def test_a_python_job_past_its_timeout_fails_timeout_and_is_retried_only_if_asked(
    client: Client, workspace: Path, fleet: Procs, retry_on_timeout: bool
):
    job_file(workspace, "sleepy.py", "import time\nprint('start', flush=True)\ntime.sleep(60)\n")
    sleepy = definition(
        "sleepy", "sleepy.py", kind="PYTHON", timeout=ONE_SECOND, retries=1, retry_on_timeout=retry_on_timeout
    )
    client.define(sleepy)
    run_id = client.submit("sleepy")
    run = client.wait(run_id, timeout=30)
    assert (run["status"], run["reason"]) == ("FAILED", "Timeout")
    tries = 2 if retry_on_timeout else 1
    assert [a["reason"] for a in run["attempts"]] == ["Timeout"] * tries
    assert _failure_messages(client, run_id) == ["timeout after 1s"] * tries
    assert_log_holds(client, [run_id])


def test_a_timed_out_shell_job_leaves_no_process_of_its_session_behind(
    client: Client, workspace: Path, fleet: Procs, tmp_path: Path
):
    pids = tmp_path / "pids"
    job_file(workspace, "spawner.sh", f"echo $$ > {pids}\nsleep 300 &\nsleep 301\ntrue\n")
    client.define(definition("spawner", "spawner.sh", timeout=ONE_SECOND))
    run_id = client.submit("spawner")
    session = int(eventually(lambda: pids.exists() and pids.read_text().strip(), what="the job to start"))
    eventually(
        lambda: len([p for p, (_, _, sid) in process_table().items() if sid == session]) >= 3,
        what="bash and its two sleeps in the attempt's session",
    )
    run = client.wait(run_id, timeout=30)
    assert (run["status"], run["reason"]) == ("FAILED", "Timeout")
    eventually(
        lambda: not [p for p, (_, pgrp, sid) in process_table().items() if session in (pgrp, sid)],
        what="every process of the attempt's session to be gone",
    )
    assert_log_holds(client, [run_id])


def test_a_job_ignoring_sigterm_and_sigalrm_is_killed_at_timeout_plus_grace(
    client: Client, workspace: Path, fleet: Procs
):
    body = (
        "import signal, time\n"
        "signal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('stubborn', flush=True)\n"
        "while True:\n    time.sleep(0.01)\n"
    )
    job_file(workspace, "stubborn.py", body)
    client.define(definition("stubborn", "stubborn.py", kind="PYTHON", timeout=ONE_SECOND))
    run_id = client.submit("stubborn")
    run = client.wait(run_id, timeout=30)
    assert (run["status"], run["reason"]) == ("FAILED", "Timeout")
    assert _failure_messages(client, run_id) == ["timeout after 1s; the job ignored SIGTERM and was killed 1s later"]
    assert_log_holds(client, [run_id])
