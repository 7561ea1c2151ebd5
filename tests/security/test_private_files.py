"""Everything jobledger keeps in its home is its user's alone: no file or folder there is open to group or others."""

from __future__ import annotations

import json
import os
import signal
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from queue_core.eventlog.embedded import EmbeddedRedis
from tests.support.jobs import definition
from tests.support.paths import REPO
from tests.support.processes import Procs, eventually, jobledger_up, pid_alive


@pytest.fixture
def cli(embedded_home: Path, tmp_path: Path) -> Iterator[Procs]:
    """CLI processes on the embedded store of ``embedded_home``, run with the common umask 022."""
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update(JOBLEDGER_HOME=str(embedded_home), JOBLEDGER_WORKSPACE=str(tmp_path / "ws"), PYTHONPATH=str(REPO))
    previous = os.umask(0o022)
    yield Procs(env, tmp_path / "logs")
    os.umask(previous)


def ok(cli: Procs, *args: str, input: str | None = None) -> str:
    result = cli.cli(*args, input=input)
    assert result.returncode == 0, result.stderr
    return result.stdout


def open_to_others(home: Path) -> list[str]:
    """Every path under ``home`` (and ``home`` itself) that group or others may read, enter or write."""
    found = []
    for folder, folders, files in os.walk(home):
        for path in [Path(folder), *(Path(folder) / name for name in folders + files)]:
            mode = os.lstat(path).st_mode
            if not stat.S_ISLNK(mode) and stat.S_IMODE(mode) & 0o077:
                found.append(f"{path.relative_to(home.parent)} {stat.S_IMODE(mode):o}")
    return sorted(set(found))


def test_the_home_the_store_its_aof_and_keys_are_private_after_writes(cli: Procs, embedded_home: Path, tmp_path: Path):
    spec = tmp_path / "nightly.json"
    spec.write_text(json.dumps(definition("nightly", "run.sh")))
    ok(cli, "define", str(spec))
    ok(cli, "cluster", "create", "pool")
    ok(cli, "secret", "set", "token", input="not-a-real-value\n")
    ok(cli, "submit", "nightly")
    store = EmbeddedRedis(embedded_home).connect()
    store.bgrewriteaof()  # a rewritten AOF (a new base file) is private too
    eventually(lambda: store.info("persistence")["aof_rewrite_in_progress"] == 0, what="the AOF rewrite")
    aof = list((embedded_home / "redis").rglob("*.aof"))
    assert aof and any(b"nightly" in path.read_bytes() for path in aof)
    assert (embedded_home / "redis" / "redis.log").exists()
    assert open_to_others(embedded_home) == []


def test_a_home_left_open_by_an_older_version_is_made_private_when_the_store_starts(
    cli: Procs, embedded_home: Path, tmp_path: Path
):
    ok(cli, "cluster", "create", "pool")
    server = EmbeddedRedis(embedded_home)
    pid = int(server.pidfile.read_text())
    os.kill(pid, signal.SIGTERM)
    eventually(lambda: not pid_alive(pid), what="the embedded server to exit")
    for path in [embedded_home, *embedded_home.rglob("*")]:  # what a umask 022 world left behind
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert "pool" in ok(cli, "cluster", "list")
    assert open_to_others(embedded_home / "redis") == []
    assert embedded_home.stat().st_mode & 0o777 == 0o700


def test_up_writes_its_logs_privately(cli: Procs, embedded_home: Path, tmp_path: Path):
    with jobledger_up(cli.env, grace=5, out=tmp_path / "up.out") as up:
        eventually(lambda: "running; Ctrl-C stops" in (tmp_path / "up.out").read_text(), what="up to start")
        os.kill(up.pid, signal.SIGINT)
        assert up.wait(timeout=30) == 0
    logs = embedded_home / "logs"
    assert list(logs.glob("*.log"))
    assert open_to_others(embedded_home) == []
