"""The event store's contract: optimistic appends, all-or-nothing batches, idempotent retries, reads."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from typing import Any

import pytest
import redis

from queue_core.errors import AppendFailed, ConcurrencyError, StoreEpochChanged
from queue_core.eventlog.events import DefinitionDeleted, NewEvent
from queue_core.eventlog.store import EventStore
from tests.support.store import log_state, registered

RACERS = 8
ROUNDS = 5
PROCESS_RACERS = 3


# -- appending ----------------------------------------------------------------------------------------


def test_append_returns_recorded_events_with_positions_and_versions_one_to_n(store: EventStore):
    batch = registered("a", 3)
    recorded = store.append(batch, {"a": 0})
    assert [r.version for r in recorded] == [1, 2, 3]
    assert [r.event_id for r in recorded] == [n.event_id for n in batch]
    assert recorded == list(store.read())  # the events exactly as the log holds them, at their positions


def test_an_aggregates_stream_length_is_its_version(store: EventStore):
    store.append(registered("a", 2), {"a": 0})
    store.append(registered("b", 1), {"b": 0})
    store.append(registered("a", 3), {"a": 2})
    assert (store.version("a"), store.version("b"), store.version("never")) == (5, 1, 0)
    assert [r.version for r in store.load("a")] == [1, 2, 3, 4, 5]


def test_load_since_reads_only_the_events_after_a_version(store: EventStore):
    store.append(registered("a", 2), {"a": 0})
    store.append(registered("b", 1), {"b": 0})
    store.append(registered("a", 3), {"a": 2})
    assert [r.version for r in store.load_since("a", 2)] == [3, 4, 5]
    assert store.load_since("a", 5) == [] and store.load_since("never", 3) == []
    assert store.load_since("a", 0) == store.load("a")


def test_a_stale_expected_version_is_refused_and_nothing_is_written(store: EventStore):
    store.append(registered("a", 2), {"a": 0})
    before, aggregate_before = log_state(store), store.load("a")
    with pytest.raises(ConcurrencyError) as refused:
        store.append(registered("a"), {"a": 1})
    assert (refused.value.aggregate, refused.value.expected, refused.value.actual) == ("a", 1, 2)
    assert log_state(store) == before
    assert store.load("a") == aggregate_before


def test_a_batch_over_two_aggregates_is_all_or_nothing_when_one_expected_version_is_wrong(store: EventStore):
    store.append(registered("b"), {"b": 0})
    before = log_state(store)
    with pytest.raises(ConcurrencyError) as refused:
        store.append([*registered("a"), *registered("b")], {"a": 0, "b": 0})
    assert refused.value.aggregate == "b"
    assert log_state(store) == before
    assert (store.version("a"), store.version("b")) == (0, 1)


def test_a_retried_append_with_the_same_event_ids_is_recorded_once_with_the_same_positions(store: EventStore):
    batch = [*registered("a", 2), *registered("b")]
    first = store.append(batch, {"a": 0, "b": 0})
    again = store.append(batch, {"a": 0, "b": 0})
    assert [r.position for r in again] == [r.position for r in first]
    assert store.length() == 3
    assert (store.version("a"), store.version("b")) == (2, 1)


def test_a_retried_append_is_recognised_after_another_writer_appended_behind_it(store: EventStore):
    batch = registered("a", 2)
    first = store.append(batch, {"a": 0})
    store.append(registered("a"), {"a": 2})  # someone else moved the aggregate on meanwhile
    again = store.append(batch, {"a": 0})
    assert [(r.position, r.event_id, r.time) for r in again] == [(r.position, r.event_id, r.time) for r in first]
    assert store.length() == 3


def test_a_different_batch_at_a_stale_version_is_a_conflict_not_a_duplicate(store: EventStore):
    store.append(registered("a"), {"a": 0})
    with pytest.raises(ConcurrencyError):
        store.append(registered("a"), {"a": 0})


def test_a_duplicate_event_id_inside_one_batch_is_refused_and_nothing_is_written(store: EventStore):
    store.append(registered("a"), {"a": 0})
    before = log_state(store)
    event = DefinitionDeleted(name="x")
    with pytest.raises(AppendFailed, match="duplicate event id"):
        store.append([NewEvent("b", event, "same-id"), NewEvent("b", event, "same-id")], {"b": 0})
    assert log_state(store) == before
    assert store.version("b") == 0


def test_a_batch_of_which_only_part_was_already_appended_is_refused_and_nothing_is_written(store: EventStore):
    done = registered("a")
    store.append(done, {"a": 0})
    before = log_state(store)
    with pytest.raises(AppendFailed, match="part of the batch"):
        store.append([*done, *registered("a")], {"a": 0})
    assert log_state(store) == before


def test_a_batch_naming_no_expected_version_for_an_aggregate_is_refused(store: EventStore):
    with pytest.raises(AppendFailed, match="no expected version given for b"):
        store.append([*registered("a"), *registered("b")], {"a": 0})
    assert store.length() == 0


# -- racing writers -----------------------------------------------------------------------------------


def test_racing_threads_on_one_aggregate_have_exactly_one_winner_per_round(redis_url: str):
    barrier = threading.Barrier(RACERS)
    wins: list[list[int]] = [[] for _ in range(RACERS)]

    def race(me: int) -> None:
        wins[me] = _race(redis_url, "contended", ROUNDS, barrier.wait)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _assert_one_winner_per_round(EventStore(redis.Redis.from_url(redis_url)), wins)


def test_racing_processes_on_one_aggregate_have_exactly_one_winner_per_round(redis_url: str):
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESS_RACERS)
    results = context.Queue()
    racers = [
        context.Process(target=_race_in_process, args=(redis_url, ROUNDS, barrier, results))
        for _ in range(PROCESS_RACERS)
    ]
    for racer in racers:
        racer.start()
    wins = [results.get(timeout=60) for _ in racers]
    for racer in racers:
        racer.join(timeout=30)
    assert [racer.exitcode for racer in racers] == [0] * PROCESS_RACERS
    _assert_one_winner_per_round(EventStore(redis.Redis.from_url(redis_url)), wins)


def _race(url: str, aggregate: str, rounds: int, wait: Callable[[], object]) -> list[int]:
    """Append at version ``r`` in each round ``r`` after every racer is ready; the rounds this one won."""
    store = EventStore(redis.Redis.from_url(url))
    won = []
    for version in range(rounds):
        wait()
        try:
            store.append(registered(aggregate), {aggregate: version})
            won.append(version)
        except ConcurrencyError:
            pass
    return won


def _race_in_process(url: str, rounds: int, barrier: Any, results: Any) -> None:
    results.put(_race(url, "contended", rounds, lambda: barrier.wait(timeout=60)))


def _assert_one_winner_per_round(store: EventStore, wins: list[list[int]]) -> None:
    assert sorted(v for won in wins for v in won) == list(range(ROUNDS))
    assert [r.version for r in store.load("contended")] == list(range(1, ROUNDS + 1))
    assert store.length() == ROUNDS


# -- reading ------------------------------------------------------------------------------------------


def test_read_after_a_position_is_exclusive_and_until_is_inclusive(store: EventStore):
    positions = [r.position for r in store.append(registered("a", 5), {"a": 0})]
    assert [r.position for r in store.read(after=positions[1])] == positions[2:]
    assert [r.position for r in store.read(after=positions[1], until=positions[3])] == positions[2:4]
    assert list(store.read(after=positions[-1])) == []
    assert [r.position for r in store.read()] == positions


def test_read_raw_yields_the_log_in_batches_of_the_size_asked(store: EventStore):
    positions = [r.position for r in store.append(registered("a", 7), {"a": 0})]
    batches = list(store.read_raw(batch=3))
    assert [len(b) for b in batches] == [3, 3, 1]
    assert [pos.decode() for b in batches for pos, _ in b] == positions
    assert [len(b) for b in store.read_raw(after=positions[0], batch=3)] == [3, 3]


def test_last_position_is_the_newest_event_or_zero_on_an_empty_log(store: EventStore):
    assert store.last_position() == "0"
    recorded = store.append(registered("a", 2), {"a": 0})
    assert store.last_position() == recorded[-1].position


def test_load_returns_one_aggregates_events_oldest_first(store: EventStore):
    store.append(registered("a", 2), {"a": 0})
    store.append(registered("b"), {"b": 0})
    last = store.append(registered("a"), {"a": 2})
    loaded = store.load("a")
    assert [(r.aggregate, r.version) for r in loaded] == [("a", 1), ("a", 2), ("a", 3)]
    assert [r.event.name for r in loaded] == ["c0", "c1", "c0"]
    assert loaded[-1] == last[0]
    assert store.load("nothing") == []


def test_a_store_emptied_between_listing_and_reading_an_aggregate_is_said_so_not_called_damaged(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
):
    store.append(registered("a"), {"a": 0})  # the store learns its epoch
    read = store._envelopes

    def emptied_in_between(*args: Any) -> Any:  # Redis restarted without its data between the two round trips
        store.redis.flushall()
        return read(*args)

    monkeypatch.setattr(store, "_envelopes", emptied_in_between)
    with pytest.raises(StoreEpochChanged, match="came back empty"):
        store.load("a")
