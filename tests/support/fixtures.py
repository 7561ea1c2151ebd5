"""Fixtures: a private redis-server per test session (flushed between tests), clients, workers, dispatchers.

Registered for every test by ``tests/conftest.py``; a folder's conftest may override one (``faults/`` does).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from queue_core import Client, Settings
from queue_core.eventlog.store import EventStore
from scheduler.timer import Timer
from tests.support.clock import T0, Clock
from tests.support.paths import EXAMPLES, REPO
from tests.support.processes import Procs
from tests.support.redis_server import RedisServer, free_port
from tests.support.schedules import new_timer

TEST_LEASE_SECONDS = "2"
TEST_LEASE_RENEW_SECONDS = "0.3"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Starts redis-servers of this test's own: ``own_redis(name, *args, appendfsync="always")`` runs one in
    ``tmp_path/name`` (AOF on, noeviction, a port it keeps across restarts). Every one is killed at the end."""
    started: list[RedisServer] = []

    def start(name: str, *args: str, appendfsync: str = "always") -> RedisServer:
        server = RedisServer(tmp_path / name, appendfsync=appendfsync)
        server.start(*args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


@pytest.fixture
def store_server(request: pytest.FixtureRequest, own_redis: Callable[..., RedisServer]) -> RedisServer:
    """This test's own redis-server, which it may kill, stop or empty (the session's one is everyone's).

    Parametrize it indirectly with ``{"appendfsync": ..., "args": [...]}`` for another fsync policy or options.
    ``faults/conftest.py`` makes it the store of every fixture there.
    """
    options = getattr(request, "param", {})
    return own_redis("redis", *options.get("args", ()), appendfsync=options.get("appendfsync", "always"))


@pytest.fixture
def fresh(own_redis: Callable[..., RedisServer]) -> RedisServer:
    """A second, empty redis-server of this test's own, beside the store: where an export or archive is carried."""
    return own_redis("fresh")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto in server mode on a loopback port: an S3 that worker processes reach through ``endpointUrl``."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    if redis_server.process is None:  # a test stopped it; bring it back from its AOF
        redis_server.start()
    connection = redis_server.client()
    connection.flushall()
    connection.script_flush()
    yield redis_server.url
    if redis_server.process is None:
        redis_server.start()


@pytest.fixture(autouse=True)
def _test_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands run in the test process remember store epochs in the test's home, not the user's."""
    monkeypatch.setenv("JOBLEDGER_HOME", str(tmp_path / "home"))


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "workspace"
    path.mkdir()
    return path


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, workspace: Path) -> Settings:
    return Settings(
        redis_url=redis_url,
        home=tmp_path / "home",
        workspace=workspace,
        lease_seconds=float(TEST_LEASE_SECONDS),
        lease_renew_seconds=float(TEST_LEASE_RENEW_SECONDS),
    )


@pytest.fixture
def client(settings: Settings) -> Client:
    return Client(settings=settings)


@pytest.fixture
def connection(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def store(connection: redis.Redis) -> EventStore:
    """The event store on the test's Redis, with no client around it."""
    return EventStore(connection)


@pytest.fixture
def env(tmp_path: Path, redis_url: str, workspace: Path) -> dict[str, str]:
    """The environment of worker, dispatcher and CLI processes in a test."""
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "JOBLEDGER_HOME": str(tmp_path / "home"),
        "JOBLEDGER_WORKSPACE": str(workspace),
        "JOBLEDGER_LEASE_SECONDS": TEST_LEASE_SECONDS,
        "JOBLEDGER_LEASE_RENEW_SECONDS": TEST_LEASE_RENEW_SECONDS,
        "JOBLEDGER_RECONCILE_AFTER_SECONDS": "3",
        "PYTHONPATH": str(REPO),
        # Jobs here share files with their test through tmp_path, which the sandbox hides by design; the
        # sandbox's own tests (tests/security) turn it on.
        "JOBLEDGER_SANDBOX": "off",
    }


@pytest.fixture
def procs(env: dict[str, str], tmp_path: Path) -> Iterator[Procs]:
    spawned = Procs(env, tmp_path / "logs")
    yield spawned
    spawned.kill_all()


@pytest.fixture
def fleet(request: pytest.FixtureRequest, procs: Procs, redis_url: str) -> Procs:
    """A dispatcher and one worker on the default cluster, started before the test.

    ``@pytest.mark.fleet(...)`` on the test (or ``pytestmark`` on its module) asks for another: any argument
    of ``Procs.fleet`` (``workers=2``, ``cluster=...``, ``timer=True``), and ``env={...}`` added to the
    environment of the fleet and of every process the test starts afterwards.
    """
    marker = request.node.get_closest_marker("fleet")
    options = dict(marker.kwargs) if marker else {}
    procs.env.update(options.pop("env", {}))
    procs.fleet(redis_url, **options)
    return procs


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "fleet(workers=1, ..., env={}): the fleet the `fleet` fixture starts")


@pytest.fixture
def clock() -> Clock:
    """A fake clock at ``T0`` (2026-11-21 08:00:30 UTC) that the test sets or moves."""
    return Clock(T0)


@pytest.fixture
def timer(client: Client, clock: Clock) -> Timer:
    """The schedule timer, in this process, on ``clock``, its wake-ups reconciled from the log."""
    return new_timer(client, clock)


@pytest.fixture
def lake(tmp_path: Path, client: Client) -> Path:
    """Depot ``files``: a local folder holding the example pipeline's city.csv; depot ``wh``: a DuckDB warehouse."""
    folder = tmp_path / "lake"
    shutil.copytree(EXAMPLES / "pipelines" / "depot", folder)
    client.add_depot("files", "local", path=str(folder))
    client.add_depot("wh", "duckdb", path=str(tmp_path / "wh.duckdb"))
    return folder


@pytest.fixture
def embedded_home(tmp_path: Path) -> Iterator[Path]:
    """A JOBLEDGER_HOME with no REDIS_URL: the embedded default; its server is stopped afterwards."""
    from queue_core.eventlog.embedded import EmbeddedRedis

    home = tmp_path / "embedded-home"
    yield home
    EmbeddedRedis(home).stop()
    shutil.rmtree(home, ignore_errors=True)
