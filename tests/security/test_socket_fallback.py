"""A home too long for a unix socket keeps its socket in a folder only its user can enter, and trusts no server
it finds there that is not its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from queue_core.eventlog.embedded import EmbeddedRedis
from tests.support.paths import REPO
from tests.support.processes import eventually
from tests.support.redis_server import server_binary

NOBODY = 65534


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short XDG_RUNTIME_DIR of the test's own, in this process and the CLI's."""
    path = Path(tempfile.mkdtemp(prefix="jl-run-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(path))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def long_home(tmp_path: Path, runtime: Path) -> Iterator[Path]:
    home = tmp_path / ("a-home-whose-path-is-too-long-for-a-unix-socket-" * 2)
    assert EmbeddedRedis(home).outside_home
    yield home
    try:
        EmbeddedRedis(home).stop()
    except Exception:  # a test that left the folder unusable has no server of the home's to stop
        pass


def jobledger(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update(JOBLEDGER_HOME=str(home), PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "queue_core", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def refused(result: subprocess.CompletedProcess[str], why: str) -> None:
    assert result.returncode == 4, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert why in result.stderr


def test_a_long_home_keeps_its_socket_in_a_0700_folder_of_its_user(long_home: Path, runtime: Path):
    assert jobledger(long_home, "cluster", "create", "pool").returncode == 0
    socket = EmbeddedRedis(long_home).socket
    assert socket.parent == runtime / "jobledger"
    info = socket.parent.stat()
    assert (info.st_uid, info.st_mode & 0o777) == (os.geteuid(), 0o700)
    assert socket.is_socket()
    assert "pool" in jobledger(long_home, "cluster", "list").stdout  # a second process reaches the same server


def test_a_foreign_server_listening_at_the_fallback_socket_is_refused(long_home: Path, tmp_path: Path):
    socket = EmbeddedRedis(long_home).socket  # creates the 0700 runtime folder, as the first start would
    elsewhere = tmp_path / "foreign"
    elsewhere.mkdir()
    foreign = subprocess.Popen(
        [server_binary(), "--port", "0", "--unixsocket", str(socket), "--dir", str(elsewhere), "--save", ""],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        stranger = redis.Redis(unix_socket_path=str(socket))
        eventually(lambda: socket.exists() and stranger.ping(), what="the foreign server to listen")
        refused(jobledger(long_home, "cluster", "create", "pool"), "is not this home's store")
        assert stranger.dbsize() == 0  # nothing was written to it
        assert foreign.poll() is None  # nor was it stopped
        refused(jobledger(long_home, "store", "stop"), "is not this home's store")
        assert foreign.poll() is None
    finally:
        foreign.kill()
        foreign.wait()


def test_a_fallback_folder_open_to_others_is_refused_not_loosened_or_used(long_home: Path, runtime: Path):
    folder = runtime / "jobledger"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    refused(jobledger(long_home, "cluster", "create", "pool"), "is open to others (mode 755)")
    assert folder.stat().st_mode & 0o777 == 0o755
    assert list(folder.iterdir()) == []


def test_a_fallback_folder_of_another_user_is_refused(long_home: Path, runtime: Path):
    if os.geteuid() != 0:
        pytest.skip("only root can make a folder of another user's here")
    folder = runtime / "jobledger"
    folder.mkdir(mode=0o700)
    os.chown(folder, NOBODY, NOBODY)
    refused(jobledger(long_home, "cluster", "create", "pool"), f"belongs to another user (uid {NOBODY})")
    assert list(folder.iterdir()) == []
