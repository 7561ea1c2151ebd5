"""The embedded default: with no REDIS_URL, every process of one JOBLEDGER_HOME shares one AOF-backed server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from queue_core.eventlog.embedded import EmbeddedRedis
from tests.support.jobs import definition
from tests.support.paths import REPO
from tests.support.processes import Procs, eventually, pid_alive

STARTERS = 4


@pytest.fixture
def cli(embedded_home: Path, tmp_path: Path) -> Iterator[Procs]:
    """CLI processes whose environment has no REDIS_URL and JOBLEDGER_HOME set to the embedded home."""
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update(JOBLEDGER_HOME=str(embedded_home), JOBLEDGER_WORKSPACE=str(tmp_path / "ws"), PYTHONPATH=str(REPO))
    yield Procs(env, tmp_path / "logs")
    # SIGTERM is the same graceful shutdown the embedded_home fixture asks for, without its client's retries.
    pid = server_pid(embedded_home)
    if pid and pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        eventually(lambda: not pid_alive(pid), what="the embedded server to exit")


def server_pid(home: Path) -> int | None:
    pidfile = EmbeddedRedis(home).pidfile
    return int(pidfile.read_text()) if pidfile.exists() else None


def servers_in(directory: Path) -> list[int]:
    """The redis-server processes working in ``directory`` (a server chdirs to its --dir)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            serving = proc.name.isdigit() and "redis-server" in (proc / "comm").read_text()
            if serving and Path(os.readlink(proc / "cwd")) == directory:
                found.append(int(proc.name))
        except OSError:
            continue  # it exited while we looked
    return found


def ok(cli: Procs, *args: str) -> str:
    result = cli.cli(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def names(cli: Procs, *what: str) -> list[str]:
    return [item["name"] for item in json.loads(ok(cli, *what, "--json"))]


def write_definition(tmp_path: Path, name: str) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(definition(name, "run.sh")))
    return str(path)


def test_define_starts_an_embedded_server_whose_aof_lives_under_the_home(
    cli: Procs, embedded_home: Path, tmp_path: Path
):
    definition_id = ok(cli, "define", write_definition(tmp_path, "nightly")).strip()
    server = EmbeddedRedis(embedded_home)
    connection = server.connect()
    assert connection.config_get("appendonly")["appendonly"] == "yes"
    assert Path(connection.config_get("dir")["dir"]) == embedded_home / "redis"
    aof = b"".join(path.read_bytes() for path in (embedded_home / "redis").rglob("*.aof"))
    assert definition_id.encode() in aof
    assert names(cli, "definitions", "list") == ["nightly"]  # a second process reaches the same server


def test_processes_starting_at_once_with_one_home_share_one_server(cli: Procs, embedded_home: Path):
    command = [sys.executable, "-m", "queue_core", "cluster", "create"]
    starters = [
        subprocess.Popen([*command, f"pool-{i}"], env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for i in range(STARTERS)
    ]
    outcomes = [(starter.communicate(timeout=60)[1], starter.returncode) for starter in starters]
    assert [code for _, code in outcomes] == [0] * STARTERS, outcomes
    assert names(cli, "cluster", "list") == ["default", *(f"pool-{i}" for i in range(STARTERS))]
    pid = server_pid(embedded_home)
    assert EmbeddedRedis(embedded_home).connect().info("server")["process_id"] == pid
    assert servers_in(embedded_home / "redis") == [pid]


def test_the_log_survives_a_restart_of_the_embedded_server(cli: Procs, embedded_home: Path, tmp_path: Path):
    ok(cli, "define", write_definition(tmp_path, "kept"))
    ok(cli, "cluster", "create", "kept-pool")
    events = ok(cli, "events", "--json")
    first = server_pid(embedded_home)
    assert first is not None
    assert ok(cli, "store", "stop").strip() == "embedded store stopped"
    eventually(lambda: not pid_alive(first), what="the embedded server to exit")
    assert ok(cli, "events", "--json") == events  # this command started the server again, from its AOF
    assert names(cli, "definitions", "list") == ["kept"]
    assert server_pid(embedded_home) not in (None, first)
