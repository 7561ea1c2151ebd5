"""The log's consumer group: new entries once per group, acknowledged, taken over when abandoned; its lag."""

from __future__ import annotations

import orjson
import redis

from queue_core.eventlog.consumer_group import ConsumerGroup
from queue_core.eventlog.events import ClusterRegistered, NewEvent, RunQueued, encode, envelope_type
from queue_core.eventlog.store import EventStore


def texts(positions: list[bytes]) -> list[str]:
    return [p.decode() for p in positions]


def append(store: EventStore, aggregate: str, n: int) -> list[str]:
    version = store.version(aggregate)
    events = [NewEvent(aggregate, ClusterRegistered(name=f"c{i}", workers=1, instance_type="local")) for i in range(n)]
    return [rec.position for rec in store.append(events, {aggregate: version})]


def test_each_entry_goes_to_one_consumer_of_the_group_decoded(store: EventStore):
    group = ConsumerGroup(store, "readers")
    group.ensure()
    group.ensure()  # a second dispatcher starting finds the group there
    positions = append(store, "cluster-a", 5)
    first = group.read_new("one", count=3)
    second = group.read_new("two", count=10)
    assert texts(first.positions + second.positions) == positions
    assert [rec.position for rec in [*first, *second]] == positions
    assert {rec.type for rec in first} == {"ClusterRegistered"}
    assert len(group.read_new("one", count=10, block_ms=1)) == 0


def test_a_group_created_after_appends_reads_from_the_start(store: EventStore):
    positions = append(store, "cluster-a", 2)
    group = ConsumerGroup(store, "late")
    group.ensure()
    assert texts(group.read_new("one", count=10).positions) == positions


def test_unacknowledged_entries_are_taken_over_and_acknowledged_once(store: EventStore):
    group = ConsumerGroup(store, "readers")
    group.ensure()
    positions = append(store, "cluster-a", 3)
    group.read_new("dead", count=10)  # read, never acknowledged
    assert group.status().pending == 3
    taken = group.claim_abandoned("alive", min_idle_ms=0, count=10)
    assert texts(taken.positions) == positions
    assert [rec.position for rec in list(taken)] == positions
    assert group.ack(taken.positions) == 3
    assert group.status().pending == 0
    assert not list(group.claim_abandoned("alive", min_idle_ms=0, count=10))
    assert group.ack([]) == 0


def test_a_deleted_entry_is_never_handed_over_as_an_event(store: EventStore, connection: redis.Redis):
    group = ConsumerGroup(store, "readers")
    group.ensure()
    positions = append(store, "cluster-a", 3)
    group.read_new("dead", count=10)
    connection.xdel(store.keys.log, positions[1])
    taken = group.claim_abandoned("alive", min_idle_ms=0, count=10)
    assert [rec.position for rec in list(taken)] == [positions[0], positions[2]]
    group.ack(taken.positions)
    assert group.status().pending == 0


def test_status_reports_consumers_pending_and_what_none_has_read(store: EventStore):
    group = ConsumerGroup(store, "readers")
    assert group.status() == (0, 0, "0-0", 0, None)  # no log, no group
    positions = append(store, "cluster-a", 4)
    before = group.status()
    assert (before.consumers, before.behind, before.delivered) == (0, 4, "0-0")
    assert before.oldest_behind_ms == int(positions[0].partition("-")[0])
    group.ensure()
    delivery = group.read_new("one", count=3)
    group.ack(delivery.positions[:1])
    now = group.status()
    assert (now.consumers, now.pending, now.delivered, now.behind) == (1, 2, positions[2], 1)
    assert now.oldest_behind_ms == int(positions[3].partition("-")[0])


def test_idle_consumers_holding_nothing_are_forgotten_and_the_others_kept(store: EventStore):
    group = ConsumerGroup(store, "readers")
    group.ensure()
    append(store, "cluster-a", 3)
    dead = group.read_new("dead", count=1)
    group.ack(dead.positions)  # it handled what it read, then died
    group.read_new("holding", count=1)  # died with an entry unacknowledged: kept until it is claimed
    group.read_new("me", count=1)
    assert group.forget_idle(keep="me", min_idle_ms=60_000) == []  # none has been idle a minute
    assert group.forget_idle(keep="me", min_idle_ms=0) == ["dead"]
    assert group.status().consumers == 2
    group.claim_abandoned("me", min_idle_ms=0, count=10)  # its entry taken over: it holds nothing now
    assert group.forget_idle(keep="me", min_idle_ms=0) == ["holding"]
    assert group.status().consumers == 1
    assert group.forget_idle(keep="me", min_idle_ms=0) == []


def test_forgetting_on_a_store_without_the_group_does_nothing(store: EventStore):
    assert ConsumerGroup(store, "readers").forget_idle(keep="me", min_idle_ms=0) == []
    append(store, "cluster-a", 1)
    assert ConsumerGroup(store, "readers").forget_idle(keep="me", min_idle_ms=0) == []


# -- reading by type without decoding everything -------------------------------------------------


def test_envelope_type_reads_the_type_without_decoding():
    envelope = encode(NewEvent("run-1", RunQueued(1, "job-1"), event_id='odd"id'), 2, "t")
    assert envelope_type(envelope) == "RunQueued"
    assert envelope_type(encode(NewEvent("run-1", RunQueued(1, "job-1")), 2, "t")) == "RunQueued"
    # An envelope written in another order (not by ``encode``) is decoded instead of guessed at.
    reordered = orjson.dumps({"d": {"type": "Other"}, "id": "x", "type": "RunQueued"})
    assert envelope_type(reordered) == "RunQueued"


def test_read_filtered_by_type_decodes_only_those(store: EventStore):
    append(store, "cluster-a", 2)
    (queued,) = store.append([NewEvent("run-1", RunQueued(1, "job-1"))], {"run-1": 0})
    append(store, "cluster-b", 1)
    assert [rec.position for rec in store.read(types={"RunQueued"})] == [queued.position]
    assert len(list(store.read(types=frozenset()))) == 0
    assert len(list(store.read())) == 4


def test_version_until_a_position_counts_the_aggregates_events_up_to_it(store: EventStore):
    positions = append(store, "cluster-a", 3)
    append(store, "cluster-b", 1)
    assert store.version("cluster-a") == 3
    assert store.version("cluster-a", until=positions[1]) == 2
    assert store.version("cluster-a", until="0-1") == 0
