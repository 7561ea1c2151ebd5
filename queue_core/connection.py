"""How a process reaches the store: REDIS_URL when given, else the embedded server."""

from __future__ import annotations

import redis

from .embedded import EmbeddedRedis
from .settings import Settings

__all__ = ["connect", "redis_url"]

SOCKET_TIMEOUT_SECONDS = 10.0


def redis_url(settings: Settings) -> str:
    """The URL other processes (workers, dispatchers) use to reach this store."""
    if settings.redis_url:
        return settings.redis_url
    return EmbeddedRedis(settings.home).url


def connect(settings: Settings, start_embedded: bool = True) -> redis.Redis:
    """A connection to the store, starting the embedded server if needed."""
    if settings.redis_url:
        return redis.Redis.from_url(
            settings.redis_url, socket_connect_timeout=SOCKET_TIMEOUT_SECONDS, health_check_interval=30
        )
    embedded = EmbeddedRedis(settings.home)
    if start_embedded:
        embedded.ensure_running()
    return embedded.connect()
