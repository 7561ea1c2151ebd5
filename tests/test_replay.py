"""Replay: the read models are a pure fold of the log, catching up is idempotent, the log survives restarts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.backoff import NoBackoff
from redis.retry import Retry

from queue_core import AlreadyExists, Client, NotFound, Settings
from queue_core.eventlog.events import decode
from queue_core.eventlog.health import forget_epoch
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import ReadModels, verify
from queue_core.readmodels.projections import PROJECTIONS, fold
from tests.support.jobs import definition
from tests.support.processes import Procs
from tests.support.redis_server import RedisServer

NAMES = st.sampled_from(["a", "b", "c"])
POOLS = st.sampled_from(["pool-x", "pool-y"])
COMMANDS = st.lists(
    st.one_of(
        st.tuples(st.just("define"), NAMES, st.integers(0, 2), st.one_of(st.none(), st.just("default"), POOLS)),
        st.tuples(st.just("delete"), NAMES),
        st.tuples(st.just("cluster"), POOLS, st.integers(1, 3)),
        st.tuples(st.just("catch up")),  # the live read models move forward in batches of different sizes
    ),
    max_size=15,
)


def run(client: Client, command: tuple[Any, ...]) -> None:
    kind, *args = command
    try:
        if kind == "define":
            name, variant, cluster = args
            client.define(definition(name, f"{variant}.sh", args=f"v{variant}", cluster=cluster))
        elif kind == "delete":
            client.delete_definition(args[0])
        elif kind == "cluster":
            client.create_cluster(args[0], workers=args[1])
        else:
            client.read_models.catch_up()
    except (NotFound, AlreadyExists):
        pass  # deleting what is not there, creating a cluster twice: refused, and that is fine here


def documents(state: dict[str, dict[str, Any]], model: str) -> dict[str, Any]:
    return {entity: doc for entity, doc in state.get(model, {}).items() if doc is not None}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(commands=COMMANDS)
def test_after_any_definition_commands_the_read_models_equal_a_fresh_fold_of_the_log(
    client: Client, connection: redis.Redis, commands: list[tuple[Any, ...]]
):
    connection.flushall()
    forget_epoch(client.settings, client.redis)  # the store was emptied on purpose: its epoch is not held against it
    client = Client(settings=client.settings)
    for command in commands:
        run(client, command)
    result = verify(client.store)
    assert (result.identical, result.difference) == (True, None)
    state = fold({}, client.store.read())
    live = ReadModels(client.store)
    for projection in PROJECTIONS:
        assert live.all(projection.model) == documents(state, projection.model)


def some_history(client: Client) -> None:
    client.define(definition("a", "a.sh"))
    client.define(definition("b", "b.sh", cluster="pool"))
    client.define(definition("a", "a.sh", args="v2"))
    client.delete_definition("b")
    client.create_cluster("other", workers=2)


def test_catching_up_twice_changes_nothing(client: Client):
    some_history(client)
    live = ReadModels(client.store)
    checkpoint = live.catch_up()
    snapshot = list(live.snapshot())
    assert live.catch_up() == checkpoint == client.store.last_position()
    assert list(live.snapshot()) == snapshot


def test_a_batch_folded_again_from_a_stale_checkpoint_is_not_committed(client: Client):
    client.define(definition("a", "a.sh"))
    live = ReadModels(client.store)
    # A folder reads the first batch from the checkpoint it saw, exactly as catch_up does ...
    start = live.checkpoint()
    events = [decode(pos.decode(), fields[b"e"]) for pos, fields in next(client.store.read_raw())]
    touched = {p.model: {p.entity(r) for r in events if r.type in p.types} for p in PROJECTIONS}
    before = live._load({model: ids for model, ids in touched.items() if ids})
    after = fold({model: dict(docs) for model, docs in before.items()}, events)
    # ... but another folder commits that batch, and more, first.
    client.define(definition("a", "a.sh", args="v2"))
    client.delete_definition("a")
    checkpoint = live.catch_up()
    snapshot = list(live.snapshot())
    assert live._commit_changes(start, events[-1].position, before, after) == "CONFLICT"
    assert (live.checkpoint(), list(live.snapshot())) == (checkpoint, snapshot)
    assert verify(client.store).identical


# -- jobledger replay --verify ------------------------------------------------------------------------

REPLAYED = re.compile(r"replayed (\d+) events in \d+\.\d{3} s \(([\d,]+) events/s\)")


def test_replay_verify_prints_the_event_count_a_rate_and_identical(procs: Procs, client: Client):
    some_history(client)
    result = procs.cli("replay", "--verify")
    assert result.returncode == 0, result.stderr
    replayed, largest, verdict = result.stdout.splitlines()
    counted = REPLAYED.fullmatch(replayed)
    assert counted and int(counted[1]) == client.store.length()
    assert largest.startswith("largest aggregate: ")
    assert verdict == "identical"


def test_replay_verify_prints_the_first_difference_of_a_corrupted_read_model_and_exits_one(
    procs: Procs, client: Client, connection: redis.Redis
):
    some_history(client)
    client.list_definitions()  # the live read models are caught up
    doc_id = client.get_definition("a")["id"]
    key = client.store.keys.read_model("live", "definitions")
    doc = orjson.loads(connection.hget(key, doc_id))
    connection.hset(key, doc_id, orjson.dumps({**doc, "name": "tampered"}))
    result = procs.cli("replay", "--verify")
    assert result.returncode == 1
    replayed, _largest, verdict = result.stdout.splitlines()
    assert REPLAYED.fullmatch(replayed)
    assert verdict.startswith(f"different: definitions/{doc_id}: live ")
    assert "tampered" in verdict


# -- restarts ---------------------------------------------------------------------------------------------


def shut_down(server: RedisServer) -> None:
    """SHUTDOWN NOSAVE, which writes the AOF out; redis-py is told not to retry against the closed port."""
    assert server.process is not None
    redis.Redis(host="127.0.0.1", port=server.port, retry=Retry(NoBackoff(), 0)).shutdown(nosave=True)
    server.process.wait(timeout=30)
    server.process = None


@pytest.mark.parametrize("how", ["shutdown", "kill -9"])
def test_every_event_survives_a_restart_of_redis_from_its_aof(store_server: RedisServer, tmp_path: Path, how: str):
    settings_ = Settings(redis_url=store_server.url, home=tmp_path / "h", workspace=tmp_path / "w")
    client = Client(settings=settings_)
    for i in range(5):
        client.define(definition(f"d{i}", "x.sh", cluster=f"pool-{i % 2}"))
    some_history(client)
    client.list_definitions()
    before = list(client.store.read())
    shut_down(store_server) if how == "shutdown" else store_server.kill()
    store_server.start()
    restarted = Client(settings=settings_)
    assert list(restarted.store.read()) == before
    assert [r.position for r in EventStore(store_server.client()).read()] == [r.position for r in before]
    assert restarted.replay_verify().identical
