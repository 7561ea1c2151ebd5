"""Read models folded by other code (jobledger upgraded) are rebuilt once, by one process; current ones are trusted."""

from __future__ import annotations

import threading

import orjson

from queue_core import Client
from queue_core.readmodels import materialized
from queue_core.readmodels.materialized import ReadModels, verify
from queue_core.readmodels.projections import FOLD_VERSION
from tests.support.workload import mixed_workload


def _stale_run(client: Client) -> str:
    """A run document as an older fold left it: without a key this code's fold writes."""
    run_id = mixed_workload(client)[3]
    client.read_models.catch_up()
    key = client.store.keys.read_model("live", "runs")
    doc = orjson.loads(client.redis.hget(key, run_id))
    del doc["logical_date"]
    client.redis.hset(key, run_id, orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))
    return run_id


def _live_doc(client: Client, run_id: str) -> dict:
    return orjson.loads(client.redis.hget(client.store.keys.read_model("live", "runs"), run_id))


def _folded_by(client: Client) -> str | None:
    value = client.redis.get(client.store.keys.folded_by("live"))
    return value.decode() if value else None


def test_a_fresh_store_records_which_code_folds_it(client: Client):
    client.create_cluster("pool")
    client.list_clusters()
    assert _folded_by(client) == FOLD_VERSION


def test_read_models_folded_by_other_code_are_rebuilt_on_the_first_read(client: Client):
    run_id = _stale_run(client)
    client.redis.set(client.store.keys.folded_by("live"), "an-older-fold")
    upgraded = Client(settings=client.settings)
    assert upgraded.get_run(run_id)  # commands read the aggregate; the list reads the read models
    assert [r for r in upgraded.list_runs(limit=None) if r["id"] == run_id]
    assert "logical_date" in _live_doc(upgraded, run_id)
    assert _folded_by(upgraded) == FOLD_VERSION
    assert verify(upgraded.store).identical


def test_read_models_from_before_fold_versions_are_rebuilt(client: Client):
    run_id = _stale_run(client)
    client.redis.delete(client.store.keys.folded_by("live"))
    ReadModels(client.store).catch_up()
    assert "logical_date" in _live_doc(client, run_id)
    assert _folded_by(client) == FOLD_VERSION


def test_read_models_folded_by_this_code_are_trusted_not_rebuilt(client: Client):
    run_id = _stale_run(client)  # folded_by is this code's: the hand edit stays, as verify would report
    ReadModels(client.store).catch_up()
    assert "logical_date" not in _live_doc(client, run_id)
    assert not verify(client.store).identical


def test_while_one_process_rebuilds_the_others_wait_for_it_instead_of_rebuilding_too(client: Client, monkeypatch):
    run_id = _stale_run(client)
    keys = client.store.keys
    client.redis.set(keys.folded_by("live"), "an-older-fold")
    client.redis.set(keys.rebuild_lock, "another process")
    waiting = threading.Event()
    pause = materialized.time.sleep

    def polled(seconds: float) -> None:  # the waiter's poll of the lock
        waiting.set()
        pause(seconds)

    monkeypatch.setattr(materialized.time, "sleep", polled)
    waiter = threading.Thread(target=ReadModels(client.store).catch_up)
    waiter.start()
    assert waiting.wait(timeout=10), "the reader did not wait for the rebuild lock"
    client.redis.set(keys.folded_by("live"), FOLD_VERSION)  # the other process finished its rebuild
    client.redis.delete(keys.rebuild_lock)
    waiter.join(timeout=10)
    assert not waiter.is_alive()
    assert "logical_date" not in _live_doc(client, run_id)  # it trusted the other's rebuild: no second one
