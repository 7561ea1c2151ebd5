"""JOBLEDGER_SANDBOX and a machine without bubblewrap: refuse, warn, or run unsandboxed as said, never silently.

"Missing" is made real: the worker's PATH holds every program of this machine's PATH but ``bwrap``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from queue_core import Client
from queue_core.settings import Settings
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs, eventually, jobledger_up
from tests.support.runs import stdout_lines
from tests.support.sandbox import needs_bwrap, path_without_bwrap

PRINT_ENV = (
    "import os\n"
    "prefixes = ('REDIS', 'JOBLEDGER_', 'AWS_')\n"
    "print('env:', ','.join(sorted(k for k in os.environ if k.startswith(prefixes))))\n"
)
PEEK_HOME = "import os, sys; print('home:', sorted(os.listdir(sys.argv[1])))\n"


def _worker_refusal(procs: Procs, redis_url: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    from queue_core.cli.fleet import fleet_command

    command = [sys.executable, "-m", "rq.cli", *fleet_command(redis_url, "default", burst=True)[1:]]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_without_bubblewrap_a_worker_refuses_to_start_against_an_external_store(
    procs: Procs, redis_url: str, tmp_path: Path
):
    env = {**procs.env, "PATH": path_without_bwrap(tmp_path / "bin"), "JOBLEDGER_SANDBOX": "auto"}
    done = _worker_refusal(procs, redis_url, env)
    assert done.returncode == 2, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.strip()]
    assert "bubblewrap" in line and "JOBLEDGER_SANDBOX=off" in line and "Traceback" not in done.stderr


@pytest.mark.parametrize("mode", ["on", "sometimes"])
def test_sandbox_on_without_bubblewrap_or_an_unknown_mode_refuses_to_start(
    mode: str, procs: Procs, redis_url: str, tmp_path: Path
):
    env = {**procs.env, "PATH": path_without_bwrap(tmp_path / "bin"), "JOBLEDGER_SANDBOX": mode}
    done = _worker_refusal(procs, redis_url, env)
    assert done.returncode == 2, done.stderr
    assert len([x for x in done.stderr.splitlines() if x.strip()]) == 1
    assert "JOBLEDGER_SANDBOX" in done.stderr and "Traceback" not in done.stderr


def test_sandbox_off_says_so_once_and_still_scrubs_the_environment(
    client: Client, settings: Settings, workspace: Path, procs: Procs, redis_url: str
):
    procs.env = {**procs.env, "JOBLEDGER_SANDBOX": "off", "AWS_ACCESS_KEY_ID": "worker-key"}
    procs.fleet(redis_url)
    job_file(workspace, "env.py", PRINT_ENV + PEEK_HOME)
    client.define(definition("env", "env.py", kind="PYTHON", args=str(settings.home)))
    run = client.wait(client.submit("env"), timeout=30)
    lines = stdout_lines(client, run["id"])
    assert lines[0] == "env: JOBLEDGER_ATTEMPT,JOBLEDGER_RUN_ID,JOBLEDGER_VALUES_FILE"
    assert lines[1].startswith("home: [") and "runs" in lines[1]  # off is off: the home is in view
    log = "\n".join(p.read_text() for p in procs.log_dir.glob("worker-*.log"))
    assert log.count("jobs run without a sandbox (JOBLEDGER_SANDBOX=off)") == 1


def test_the_worker_warns_of_a_store_that_answers_without_a_password(procs: Procs, redis_url: str):
    procs.fleet(redis_url)
    host_port = redis_url.split("//", 1)[1].split("/", 1)[0]

    def said() -> bool:
        log = "\n".join(p.read_text() for p in procs.log_dir.glob("worker-*.log"))
        return f"the store at {host_port} answers without a password" in log

    eventually(said, what="the warning")


def _stop(up: subprocess.Popen[bytes]) -> None:
    """Stop ``jobledger up`` as Ctrl-C does: it stops its workers and dispatcher (a kill would orphan them)."""
    os.kill(up.pid, signal.SIGINT)
    assert up.wait(timeout=60) == 0


def _up_env(procs: Procs, home: Path, workspace: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in procs.env.items() if k != "REDIS_URL"}
    return {**env, "JOBLEDGER_HOME": str(home), "JOBLEDGER_WORKSPACE": str(workspace), **extra}


def test_without_bubblewrap_up_with_the_embedded_store_warns_loudly_and_scrubs_the_environment(
    embedded_home: Path, workspace: Path, procs: Procs, tmp_path: Path
):
    env = _up_env(procs, embedded_home, workspace, PATH=path_without_bwrap(tmp_path / "bin"), JOBLEDGER_SANDBOX="auto")
    out = tmp_path / "up.log"
    with jobledger_up(env, grace=1.0, out=out) as up:
        eventually(lambda: "running; Ctrl-C stops" in out.read_text(), what="up to run")
        said = out.read_text()
        assert "WARNING: jobs are NOT sandboxed" in said and "install bubblewrap" in said
        client = Client(settings=Settings.from_env(env))
        job_file(workspace, "env.py", PRINT_ENV)
        client.define(definition("env", "env.py", kind="PYTHON"))
        run = client.wait(client.submit("env"), timeout=60)
        assert stdout_lines(client, run["id"]) == ["env: JOBLEDGER_ATTEMPT,JOBLEDGER_RUN_ID,JOBLEDGER_VALUES_FILE"]
        _stop(up)


def test_without_bubblewrap_up_against_an_external_store_refuses_with_exit_code_2(
    procs: Procs, redis_url: str, workspace: Path, tmp_path: Path
):
    env = _up_env(
        procs, tmp_path / "home", workspace, PATH=path_without_bwrap(tmp_path / "bin"), JOBLEDGER_SANDBOX="auto"
    )
    env["REDIS_URL"] = redis_url
    done = subprocess.run(
        [sys.executable, "-m", "queue_core", "up", "--workers", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "bubblewrap" in done.stderr and "Traceback" not in done.stderr
    assert len([x for x in done.stderr.splitlines() if x.strip()]) == 1


@needs_bwrap
def test_up_against_a_store_without_a_password_says_so_at_start(
    procs: Procs, redis_url: str, workspace: Path, tmp_path: Path
):
    env = {**_up_env(procs, tmp_path / "home", workspace, JOBLEDGER_SANDBOX="on"), "REDIS_URL": redis_url}
    out = tmp_path / "up.log"
    with jobledger_up(env, grace=1.0, out=out) as up:
        eventually(lambda: "running; Ctrl-C stops" in out.read_text(), what="up to run")
        assert "answers without a password" in out.read_text()
        _stop(up)
