"""``JOBLEDGER_DURABILITY=replicated`` and the Sentinel settings: an append is acknowledged only once a replica has
it (``WAIT`` on the append's own connection); without one in time it is ambiguous, ``StoreUnavailable``, and its
retry with the same event ids is recorded once. The settings are refused naming the variable when malformed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
import redis

from queue_core import Settings, StoreUnavailable
from queue_core.errors import InvalidInput
from queue_core.eventlog.connection import connect
from queue_core.eventlog.events import NewEvent, RunQueued
from queue_core.eventlog.store import EventStore
from tests.support.processes import eventually
from tests.support.redis_server import RedisServer

WAIT_MS = 200


def queued() -> list[NewEvent]:
    run = str(uuid.uuid4())
    return [NewEvent(run, RunQueued(attempt=1, job_id=f"{run}-1"))]


def replicas_online(connection: redis.Redis) -> int:
    info = connection.info("replication")
    return sum(1 for key, value in info.items() if key.startswith("slave") and value.get("state") == "online")


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"JOBLEDGER_DURABILITY": "fsync"}, "JOBLEDGER_DURABILITY"),
        ({"JOBLEDGER_SENTINELS": "a:1,b", "JOBLEDGER_SENTINEL_MASTER": "m"}, "JOBLEDGER_SENTINELS"),
        ({"JOBLEDGER_SENTINELS": "a:x"}, "JOBLEDGER_SENTINELS"),
        ({"JOBLEDGER_SENTINELS": "a:1"}, "JOBLEDGER_SENTINEL_MASTER"),
    ],
)
def test_malformed_settings_are_refused_naming_the_variable(env: dict[str, str], field: str):
    settings = Settings.from_env(env)
    with pytest.raises(InvalidInput) as raised:
        settings.replicas_to_wait  # noqa: B018
        settings.sentinel_addresses  # noqa: B018
    assert raised.value.field == field


def test_settings_read_the_sentinels_and_the_durability():
    settings = Settings.from_env(
        {
            "JOBLEDGER_SENTINELS": "s1:26379, [::1]:26380",
            "JOBLEDGER_SENTINEL_MASTER": "m",
            "JOBLEDGER_DURABILITY": "Replicated",
        }
    )
    assert settings.sentinel_addresses == [("s1", 26379), ("::1", 26380)]
    assert settings.replicas_to_wait == 1 and settings.external_store
    assert Settings.from_env({}).replicas_to_wait == 0


def test_an_append_is_acknowledged_once_the_replica_has_it_and_a_retry_of_it_too(
    own_redis: Callable[..., RedisServer],
):
    primary = own_redis("primary", "--repl-diskless-sync-delay", "0")
    replica = own_redis("replica", "--replicaof", "127.0.0.1", str(primary.port))
    eventually(lambda: replicas_online(primary.client()) >= 1, what="the replica in sync")
    store = EventStore(primary.client(), replicas=1, replica_wait_ms=WAIT_MS)
    batch = queued()
    recorded = store.append(batch, {batch[0].aggregate: 0})
    assert replica.client().xlen(store.keys.log) == 1  # on the replica before the append returned
    again = store.append(batch, {batch[0].aggregate: 0})  # a retry whose first reply was lost: DUP, acknowledged
    assert [r.position for r in again] == [r.position for r in recorded]
    assert primary.client().xlen(store.keys.log) == 1


def test_without_a_replica_in_time_the_append_is_ambiguous_and_its_retries_record_it_once(
    own_redis: Callable[..., RedisServer],
):
    primary = own_redis("alone")
    store = EventStore(primary.client(), replicas=1, replica_wait_ms=WAIT_MS, patience_seconds=0.5)
    batch = queued()
    for _ in range(2):
        with pytest.raises(StoreUnavailable, match="0 of 1 replicas acknowledged"):
            store.append(batch, {batch[0].aggregate: 0})
    assert primary.client().xlen(store.keys.log) == 1  # written on the primary, never acknowledged


def test_a_primary_refusing_writes_without_replicas_is_an_outage_and_nothing_is_written(
    own_redis: Callable[..., RedisServer],
):
    primary = own_redis("guarded", "--min-replicas-to-write", "1")
    store = EventStore(primary.client(), replicas=1, replica_wait_ms=WAIT_MS, patience_seconds=0.3)
    batch = queued()
    with pytest.raises(StoreUnavailable, match="too few replicas"):
        store.append(batch, {batch[0].aggregate: 0})
    assert primary.client().xlen(store.keys.log) == 0


def test_any_command_a_primary_refuses_for_want_of_replicas_is_an_outage(own_redis: Callable[..., RedisServer]):
    primary = own_redis("guarded-commands", "--min-replicas-to-write", "1")
    settings = Settings(redis_url=primary.url, home=primary.directory / "home", workspace=primary.directory)
    connection = connect(settings)
    with pytest.raises(StoreUnavailable, match="too few replicas"):
        connection.set("jobledger:probe", "1")
    with pytest.raises(StoreUnavailable, match="too few replicas"):
        connection.pipeline(transaction=False).set("jobledger:probe", "1").execute()
