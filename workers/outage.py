"""Riding out a store outage: a running job keeps running while Redis is away, and nothing is lost meanwhile."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import redis
import structlog

from queue_core.eventlog.connection import unavailable

__all__ = ["BufferedLines", "away_tolerant", "wait_for_store"]

log = structlog.get_logger("jobledger.worker")
T = TypeVar("T")
MAX_BUFFERED_LINES = 50_000
MAX_WAIT_SECONDS = 5.0
STORE_ERRORS = (redis.ConnectionError, redis.TimeoutError)

Lines = list[tuple[str, str, str]]


def away_tolerant(call: Callable[[], T], when_away: T, what: str) -> Callable[[], T]:
    """``call``, answering ``when_away`` instead of failing while the store cannot be reached."""

    def tolerant() -> T:
        try:
            return call()
        except STORE_ERRORS as exc:
            log.warning("store unavailable; the job keeps running", during=what, error=str(unavailable(exc)))
            return when_away

    return tolerant


class BufferedLines:
    """Output lines on their way to the run's log: kept while the store is away, written when it answers.

    Beyond ``limit`` lines the oldest kept ones are dropped (and that is said in the log when it returns).
    """

    def __init__(self, write: Callable[[Lines], None], limit: int = MAX_BUFFERED_LINES) -> None:
        self.write = write
        self.limit = limit
        self.pending: Lines = []
        self.dropped = 0

    def __call__(self, lines: Lines) -> None:
        self.pending.extend(lines)
        self.flush()

    def flush(self) -> bool:
        """Write what is pending; False if the store is still away."""
        if not self.pending:
            return True
        try:
            self.write(self.pending)
        except STORE_ERRORS:
            if len(self.pending) > self.limit:
                self.dropped += len(self.pending) - self.limit
                self.pending = self.pending[-self.limit :]
            return False
        self.pending = []
        return True


def wait_for_store(connection: redis.Redis, should_give_up: Callable[[], bool] = lambda: False) -> bool:
    """Block until the store answers a PING (True), or ``should_give_up`` says to stop waiting (False)."""
    delay = 0.2
    while not should_give_up():
        try:
            connection.ping()
            return True
        except STORE_ERRORS as exc:
            log.warning("store unavailable; waiting for it", error=str(unavailable(exc)), retry_in=delay)
        time.sleep(delay)
        delay = min(delay * 2, MAX_WAIT_SECONDS)
    return False
