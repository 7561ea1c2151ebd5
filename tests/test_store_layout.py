"""A store written before position lists (a stream per aggregate) is brought up to date by the first process."""

from __future__ import annotations

from pathlib import Path

import pytest

from queue_core import Client, Settings
from queue_core.errors import UnsafeStore
from queue_core.eventlog.store import EventStore
from tests.support.processes import Procs
from tests.support.workload import mixed_workload


def _as_the_older_code_left_it(store: EventStore) -> dict[str, int]:
    """Turn every position list back into the stream of copies the older layout kept; returns the versions."""
    keys, versions = store.keys, {}
    prefix = keys.aggregate("")
    for key in list(store.redis.scan_iter(match=f"{prefix}*")):
        aggregate = key.decode()[len(prefix) :]
        for position in store.redis.lrange(key, 0, -1):
            envelope = store.redis.xrange(keys.log, min=position, max=position)[0][1][b"e"]
            store.redis.xadd(keys.legacy_aggregate_stream(aggregate), {"e": envelope}, id=position)
        versions[aggregate] = store.redis.llen(key)
        store.redis.delete(key)
    store.redis.delete(keys.layout)
    return versions


def test_the_first_process_turns_aggregate_streams_into_position_lists_and_everything_answers_the_same(
    client: Client, settings: Settings, procs: Procs
):
    runs = mixed_workload(client)
    shown = {run: procs.cli("status", run).stdout for run in runs}
    versions = _as_the_older_code_left_it(client.store)
    assert client.store.redis.keys(client.store.keys.legacy_aggregate_stream("*"))

    upgraded = Client(settings=settings)  # its start checks the store
    assert upgraded.store.versions(versions) == versions
    assert not upgraded.store.redis.keys(upgraded.store.keys.legacy_aggregate_stream("*"))
    assert upgraded.store.redis.get(upgraded.store.keys.layout) == b"2"
    assert {run: procs.cli("status", run).stdout for run in runs} == shown
    checked = procs.cli("check")
    assert checked.returncode == 0, checked.stdout


def test_a_store_in_a_newer_layout_is_refused_naming_it(client: Client, settings: Settings, tmp_path: Path):
    client.create_cluster("pool")
    client.store.redis.set(client.store.keys.layout, "3")
    with pytest.raises(UnsafeStore, match="layout is 3, newer than this jobledger's"):
        Client(settings=settings)
