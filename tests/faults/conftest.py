"""Fault tests: the shared fixtures, except that each test owns a redis-server it may kill, stop or empty."""

from __future__ import annotations

import pytest

from tests.support.redis_server import RedisServer


@pytest.fixture
def redis_url(store_server: RedisServer) -> str:
    """Every shared fixture (client, env, procs, connection) reaches this test's own server (``store_server``)."""
    return store_server.url
