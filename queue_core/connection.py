"""How a process reaches the store: REDIS_URL when given, else the embedded server."""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from .embedded import EmbeddedRedis
from .settings import Settings

__all__ = ["connect", "redis_url"]

SOCKET_TIMEOUT_SECONDS = 10.0
CONNECTION_RETRIES = 3


def redis_url(settings: Settings) -> str:
    """The URL other processes (workers, dispatchers) use to reach this store."""
    if settings.redis_url:
        return settings.redis_url
    return EmbeddedRedis(settings.home).url


def connect(settings: Settings, start_embedded: bool = True) -> redis.Redis:
    """A connection to the store, starting the embedded server if needed."""
    if settings.redis_url:
        return redis.Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
            health_check_interval=30,
            # redis-py 8 retries ten times with backoff by default; a client should learn of an outage fast.
            retry=Retry(ExponentialBackoff(0.5, 0.05), CONNECTION_RETRIES),
        )
    embedded = EmbeddedRedis(settings.home)
    if start_embedded:
        embedded.ensure_running()
    return embedded.connect()
