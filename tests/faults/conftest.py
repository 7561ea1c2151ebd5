"""Fault tests: the top-level fixtures, except that each test owns a redis-server it may kill, stop or empty."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_server import RedisServer


@pytest.fixture
def store_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisServer]:
    """This test's own redis-server (AOF on, noeviction), on a port it keeps across restarts.

    Parametrize it indirectly with ``{"appendfsync": ..., "args": [...]}`` for another fsync policy or options.
    """
    options = getattr(request, "param", {})
    server = RedisServer(tmp_path / "redis", appendfsync=options.get("appendfsync", "always"))
    server.start(*options.get("args", ()))
    yield server
    server.kill()


@pytest.fixture
def redis_url(store_server: RedisServer) -> str:
    """Every top-level fixture (client, env, procs, connection) reaches this test's own server."""
    return store_server.url
