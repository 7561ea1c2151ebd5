"""The store's password never reaches a command line: every process jobledger starts gets it by environment or file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from queue_core import Client, Settings
from queue_core.cli.fleet import fleet_command
from queue_core.errors import InvalidInput
from tests.support.jobs import definition, job_file
from tests.support.processes import cmdlines_seen, eventually, jobledger_up, pid_alive, process_table
from tests.support.redis_server import RedisServer

PASSWORD = "argv-leak-canary-pw"


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server whose password is set after it started, so the test's own server has none on its argv."""
    server = RedisServer(tmp_path / "guarded")
    server.start()
    server.client().config_set("requirepass", PASSWORD)
    server.password = PASSWORD
    yield server
    server.kill()


def descendants(root: int) -> list[int]:
    """Every live process below ``root``."""
    table = process_table()
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _, _) in table.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""  # it exited while we looked


def leaks(text: bytes) -> bool:
    return PASSWORD.encode() in text or quote(PASSWORD, safe="").encode() in text


def test_up_against_a_password_protected_store_puts_the_password_on_no_command_line(
    guarded: RedisServer, env: dict[str, str], workspace: Path, tmp_path: Path
):
    url = f"redis://:{PASSWORD}@127.0.0.1:{guarded.port}/0"
    up_env = {**env, "REDIS_URL": url}
    client = Client(settings=Settings.from_env(up_env))
    client.define(definition("ok", job_file(workspace, "ok.sh", "echo up\n")))
    children: list[int] = []
    with cmdlines_seen(PASSWORD.encode()) as seen, jobledger_up(up_env, grace=5, out=tmp_path / "up.out") as up:
        try:
            eventually(lambda: "running; Ctrl-C stops" in (tmp_path / "up.out").read_text(), what="up to start")
            assert client.wait(client.submit("ok"), timeout=60)["status"] == "SUCCEEDED"
            children = descendants(up.pid)
            assert len(children) >= 2  # the scheduler and a worker, at least
            lines = {pid: cmdline(pid) for pid in [up.pid, *children]}
            assert not [line for line in lines.values() if leaks(line)]
            os.kill(up.pid, signal.SIGINT)
            assert up.wait(timeout=30) == 0
        finally:  # up's children run in sessions of their own: a failed test must not leave them behind
            for pid in children:
                if pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)
    assert seen == []  # sampled every 5 ms machine-wide while it ran: no process ever showed it
    assert PASSWORD not in (tmp_path / "up.out").read_text()


def test_jobledger_worker_hands_rq_the_password_by_environment_not_argv(guarded: RedisServer, env: dict[str, str]):
    url = f"redis://:{PASSWORD}@127.0.0.1:{guarded.port}/0"
    worker = subprocess.Popen(
        [sys.executable, "-m", "queue_core", "worker"],
        env={**env, "REDIS_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        store = redis.Redis(port=guarded.port, password=PASSWORD)
        eventually(lambda: store.scard("rq:workers"), timeout=60, what="the rq worker to register")
        assert b"rq.cli" in cmdline(worker.pid)  # the same pid, after jobledger exec'd rq
        assert not leaks(cmdline(worker.pid))
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    assert not pid_alive(worker.pid)


def test_the_fleet_command_refuses_a_url_carrying_a_password():
    with pytest.raises(InvalidInput, match="process list"):
        fleet_command(f"redis://:{PASSWORD}@redis:6379/0", "default")
    assert fleet_command(None, "default")[2:4] == ["-c", "workers.rq_settings"]
