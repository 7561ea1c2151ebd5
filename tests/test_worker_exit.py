"""A fleet worker's command listener wakes often, so stopping it never waits out RQ's minute-long read."""

from __future__ import annotations

import redis
from rq import Queue

from workers.worker import PUBSUB_WAKE_SECONDS, AttemptWorker


def test_the_command_listener_wakes_within_a_second_and_stops_when_unsubscribed(redis_url: str):
    connection = redis.Redis.from_url(redis_url)
    worker = AttemptWorker([Queue("default", connection=connection)], connection=connection)
    worker.subscribe()
    listener = worker.pubsub_thread
    assert listener is not None and listener.is_alive()
    assert listener.sleep_time == PUBSUB_WAKE_SECONDS <= 1  # RQ's own is 60 s: an exit could wait that long
    worker.unsubscribe()
    listener.join(timeout=30)  # bounded by the wake-up above; the bound only keeps a regression from hanging
    assert not listener.is_alive()
