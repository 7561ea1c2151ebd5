"""Tamper evidence: every log entry is chained to the one before it, and a walk names the first break."""

from __future__ import annotations

import orjson
import redis

from queue_core.eventlog.chain import link, walk
from queue_core.eventlog.events import ClusterRegistered, NewEvent
from queue_core.eventlog.store import EventStore


def _append(store: EventStore, count: int) -> None:
    for i in range(count):
        store.append(
            [NewEvent(f"c{i}", ClusterRegistered(name=f"c{i}", workers=1, instance_type="local"))], {f"c{i}": 0}
        )


def test_each_entry_hashes_its_envelope_with_the_previous_hash(connection: redis.Redis):
    store = EventStore(connection)
    store.append(
        [NewEvent("a", ClusterRegistered(name="a", workers=1, instance_type="x")),
         NewEvent("b", ClusterRegistered(name="b", workers=2, instance_type="x"))],
        {"a": 0, "b": 0},
    )  # fmt: skip
    _append(store, 3)
    entries = list(store.read_chain())
    previous = ""
    for _position, envelope, recorded in entries:
        assert recorded == link(previous, envelope)
        previous = recorded
    report = walk(entries, previous="")
    assert (report.intact, report.checked, report.head) == (True, 5, previous)


def test_an_event_edited_in_redis_is_named_as_the_first_break(connection: redis.Redis):
    store = EventStore(connection)
    _append(store, 5)
    positions = [p for p, _, _ in store.read_chain()]
    victim = positions[2]
    [(_, fields)] = connection.xrange(store.keys.log, min=victim, max=victim)
    envelope = orjson.loads(fields[b"e"])
    envelope["d"]["workers"] = 99  # what an intruder with Redis access would do
    # Rewrite the entry in place: XADD cannot reuse an id, so rebuild the stream around it.
    entries = connection.xrange(store.keys.log)
    connection.delete(store.keys.log)
    for pos, f in entries:
        if pos.decode() == victim:
            f = {b"e": orjson.dumps(envelope), b"h": f[b"h"]}
        connection.xadd(store.keys.log, f, id=pos)
    report = walk(store.read_chain(), previous="")
    assert (report.intact, report.broken_at, report.checked) == (False, victim, 2)


def test_a_removed_event_breaks_the_chain_at_the_next_one(connection: redis.Redis):
    store = EventStore(connection)
    _append(store, 4)
    positions = [p for p, _, _ in store.read_chain()]
    connection.xdel(store.keys.log, positions[1])
    report = walk(store.read_chain(), previous="")
    assert report.broken_at == positions[2]


def test_a_trimmed_log_is_checked_from_its_first_remaining_entry(connection: redis.Redis):
    store = EventStore(connection)
    _append(store, 4)
    positions = [p for p, _, _ in store.read_chain()]
    connection.xdel(store.keys.log, positions[0])
    assert not walk(store.read_chain(), previous="").intact
    assert walk(store.read_chain(), previous=None).intact


def test_jobledger_verify_says_intact_or_names_the_break_and_exits_1(client, procs, connection: redis.Redis):
    _append(client.store, 3)
    ok = procs.cli("verify")
    assert ok.returncode == 0 and ok.stdout.startswith("chain intact: 3 events")
    positions = [p for p, _, _ in client.store.read_chain()]
    connection.xdel(client.store.keys.log, positions[1])
    broken = procs.cli("verify")
    assert broken.returncode == 1
    assert broken.stdout.startswith(f"chain broken at {positions[2]}")
