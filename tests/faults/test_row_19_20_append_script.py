"""Rows 19 and 20: the append script gone from Redis's cache, and the append script failing.

Row 19: ``SCRIPT FLUSH``, or a restart of Redis, between two appends (pipelined appends too): the client
loads the script again by itself; no error reaches the user, no event is doubled (a batch retried
after the flush is recognised by its event ids).

Row 20: a key the script needs has the wrong type: the script fails before its first write, the caller
gets ``AppendFailed`` naming why, and the log's length, its newest position and every aggregate's version
are as they were. (An aggregate's stream ahead of the log, the other failure of this row, went with the
per-aggregate streams: a position list holds no ids of its own to be ahead with.)
"""

from __future__ import annotations

import pytest

from queue_core.errors import AppendFailed
from queue_core.eventlog.events import encode
from queue_core.eventlog.store import EventStore
from queue_core.timefmt import utc_now
from tests.support.faults import assert_log_holds
from tests.support.redis_server import RedisServer
from tests.support.store import registered


def test_script_flush_between_appends_is_transparent(store: EventStore):
    batch = registered("a")
    store.append(batch, {"a": 0})
    store.redis.script_flush()
    store.append(batch, {"a": 0})  # a retry of the same batch after the flush: still recorded once
    store.redis.script_flush()
    store.append(registered("a"), {"a": 1})
    assert [r.version for r in store.read()] == [1, 2]
    assert_log_holds(store, [batch[0].event_id])


def test_a_restart_of_redis_between_appends_is_transparent(store: EventStore, store_server: RedisServer):
    store.append(registered("a"), {"a": 0})
    store_server.kill()
    store_server.start()  # from its AOF, with an empty script cache, and the client's connection broken
    store.append(registered("a"), {"a": 1})
    assert store.version("a") == 2
    assert_log_holds(store)


def test_pipelined_appends_after_a_script_flush_load_the_script_again(store: EventStore):
    def pipelined(versions: range) -> list[bytes]:
        pipe = store.redis.pipeline(transaction=False)
        now = utc_now()
        for version in versions:
            (new,) = registered("p")
            args = [store.epoch, 1, version, 1, new.event_id, encode(new, version + 1, now)]
            store._append(keys=[store.keys.log, store.keys.epoch, store.keys.aggregate("p")], args=args, client=pipe)
        return [reply[0] for reply in pipe.execute()]

    store.append(registered("p"), {"p": 0})  # the store learns its epoch
    assert pipelined(range(1, 4)) == [b"OK"] * 3
    store.redis.script_flush()
    assert pipelined(range(4, 7)) == [b"OK"] * 3
    assert store.version("p") == 7
    assert_log_holds(store)


@pytest.mark.parametrize("wrong_key", ["log stream", "aggregate position list"])
def test_a_key_of_the_wrong_type_fails_the_script_before_any_write(store: EventStore, wrong_key: str):
    store.append(registered("earlier"), {"earlier": 0})
    key = store.keys.log if wrong_key == "log stream" else store.keys.aggregate("a")
    if store.redis.exists(key):
        store.redis.rename(key, "aside")
    store.redis.set(key, "not what the script expects")
    with pytest.raises(AppendFailed, match="WRONGTYPE"):
        store.append([*registered("b"), *registered("a")], {"a": 0, "b": 0})
    assert store.version("b") == 0
    assert store.redis.get(key) == b"not what the script expects"
    store.redis.delete(key)
    if store.redis.exists("aside"):
        store.redis.rename("aside", key)
    assert_log_holds(store)
