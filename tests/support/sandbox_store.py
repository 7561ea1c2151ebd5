"""A jobledger home on a store with a password, as an attacker would meet it: AOF, unix socket, keys, other runs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from queue_core import Client
from queue_core.keyfiles import private_dir
from queue_core.settings import Settings
from tests.support.fixtures import TEST_LEASE_RENEW_SECONDS, TEST_LEASE_SECONDS
from tests.support.processes import Procs
from tests.support.redis_server import RedisServer

STORE_PASSWORD = "s3cret-store-pw-7f2e"  # what no job may find
WORKER_AWS_SECRET = "worker-aws-secret-91c4"
OTHER_RUN_SECRET = "another-attempts-data-5d1a"


@dataclass
class GuardedHome:
    """The home, its store (AOF and unix socket inside the home), a planted key file and another run's file."""

    home: Path
    server: RedisServer
    socket: Path
    other_run_file: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"redis://:{STORE_PASSWORD}@127.0.0.1:{self.server.port}/0"

    @property
    def client(self) -> Client:
        return Client(settings=Settings.from_env(self.env))


@pytest.fixture(name="guarded")
def guarded_fixture(tmp_path: Path, env: dict[str, str], workspace: Path) -> Iterator[GuardedHome]:
    home = tmp_path / "home"
    socket = home / "redis" / "redis.sock"
    server = RedisServer(home / "redis", password=STORE_PASSWORD)
    server.start("--unixsocket", str(socket), "--unixsocketperm", "777")
    private_dir(home / "keys")  # the secret key file appears there with the test's first secret: jobs must not read it
    other = home / "runs" / "other-run-1-abc" / "source" / "data.txt"
    other.parent.mkdir(parents=True)
    other.write_text(OTHER_RUN_SECRET)
    guarded_env = {
        **env,
        "REDIS_URL": f"redis://:{STORE_PASSWORD}@127.0.0.1:{server.port}/0",
        "JOBLEDGER_HOME": str(home),
        "JOBLEDGER_WORKSPACE": str(workspace),
        "JOBLEDGER_LEASE_SECONDS": TEST_LEASE_SECONDS,
        "JOBLEDGER_LEASE_RENEW_SECONDS": TEST_LEASE_RENEW_SECONDS,
        "AWS_SECRET_ACCESS_KEY": WORKER_AWS_SECRET,
        "JOBLEDGER_SANDBOX": "on",
    }
    yield GuardedHome(home, server, socket, other, guarded_env)
    server.stop()


def guarded_fleet(procs: Procs, guarded: GuardedHome, **env: str) -> int:
    """A dispatcher and one worker on the guarded store; the worker's pid."""
    procs.env = {**guarded.env, **env}
    fleet = procs.fleet(guarded.url)
    return fleet.workers[0].pid
