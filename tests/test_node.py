"""``jobledger up`` and ``jobledger demo`` as a user runs them: real processes, Ctrl-C, a fresh home."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from queue_core import Client, Settings
from tests.support.jobs import definition, job_file
from tests.support.paths import REPO
from tests.support.processes import Procs, children_of, eventually, jobledger_up, pid_alive


def test_up_runs_workers_for_every_cluster_and_stops_cleanly_on_ctrl_c(
    env: dict[str, str], settings: Settings, workspace: Path, tmp_path: Path
):
    client = Client(settings=settings)
    client.define(definition("ok", job_file(workspace, "ok.sh", "echo up\n")))
    out = tmp_path / "up.out"
    with jobledger_up(env, grace=5, out=out) as up:
        eventually(lambda: "running; Ctrl-C stops" in out.read_text(), what="up to start")
        text = out.read_text()
        assert f"rq worker -u {settings.redis_url} -w workers.worker.AttemptWorker" in text
        assert client.wait(client.submit("ok"), timeout=30)["status"] == "SUCCEEDED"
        client.create_cluster("late", workers=1)
        eventually(lambda: "cluster late: 1 workers" in out.read_text(), what="workers for a new cluster")
        assert client.wait(client.submit("ok", cluster="late"), timeout=30)["status"] == "SUCCEEDED"
        children = children_of(up.pid)
        assert len(children) == 3  # a dispatcher, a default worker, a worker for "late"
        os.kill(up.pid, signal.SIGINT)
        assert up.wait(timeout=30) == 0
        assert "stopped" in out.read_text()
        eventually(lambda: not any(pid_alive(p) for p in children), timeout=10, what="children to exit")


def test_ctrl_c_during_an_attempt_loses_nothing_the_attempt_is_retried_later(
    env: dict[str, str], settings: Settings, workspace: Path, tmp_path: Path, procs: Procs, redis_url: str
):
    client = Client(settings=settings)
    pids = tmp_path / "pids"
    # The job and a process it starts: neither may outlive the attempt Ctrl-C cut short.
    body = f'[ "$JOBLEDGER_ATTEMPT" -ge 2 ] && exit 0\nsleep 300 &\necho $$ $! > {pids}\nwait\n'
    client.define(definition("interrupted", job_file(workspace, "long.sh", body), retries=1, timeout=10))
    with jobledger_up(env, grace=0.5) as up:
        run_id = client.submit("interrupted")
        eventually(lambda: pids.exists() and pids.read_text().strip(), what="the attempt to run")
        os.kill(up.pid, signal.SIGINT)
        assert up.wait(timeout=30) == 0
    # The worker's cold stop recorded the attempt's end; the run waits for its retry, not for a reaper.
    run = client.get_run(run_id)
    assert run["status"] == "PENDING" and run["attempts"][0]["reason"] == "WorkerLost"
    assert not any(pid_alive(int(pid)) for pid in pids.read_text().split())
    procs.fleet(redis_url)
    run = client.wait(run_id, timeout=30)
    assert [(a["status"], a["reason"]) for a in run["attempts"]] == [("FAILED", "WorkerLost"), ("SUCCEEDED", None)]


def test_demo_on_a_fresh_home_shows_every_terminal_state_and_exits_0(embedded_home: Path):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "JOBLEDGER_WORKSPACE")}
    env.update(JOBLEDGER_HOME=str(embedded_home), PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-m", "queue_core", "demo"],
        env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    for expected in (
        "SUCCEEDED",
        "NonZeroExitCode",
        "Timeout",
        "Cancelled by user",
        "identical",
        "└── greet  SUCCEEDED",
    ):
        assert expected in result.stdout
    assert "Traceback" not in result.stderr
    assert (embedded_home / "redis").is_dir()
