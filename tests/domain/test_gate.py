"""The gate as tables: which waiting runs start under concurrency limits, pools and priorities, and why the
others wait; and the pool fold and decisions. No Redis: runs are folded from events."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from queue_core.domain.gate import decide_gate, holds_slots, is_waiting
from queue_core.domain.pools import apply_pool, decide_create, decide_delete, decide_resize
from queue_core.domain.runs import apply_run
from queue_core.errors import AlreadyExists, InvalidInput, NotFound, PoolInUse
from queue_core.eventlog.events import (
    Event,
    PoolCreated,
    PoolDeleted,
    PoolResized,
    RunAttemptFailed,
    RunCancelled,
    RunFailed,
    RunQueued,
    RunRetryScheduled,
    RunStarted,
    RunSubmitted,
    RunWaiting,
)
from queue_core.specs.definitions import normalize_definition
from tests.support.events import fold
from tests.support.tables import cases

SOURCE = {"type": "WORKSPACE", "sourceDef": {"path": "jobs"}}
RETRY = {"numRetries": 1, "delayBetweenRetries": 0.0, "retryOnTimeout": False}
POOLS = {"etl": 2, "big": 3}


def run(run_id: str, order: int, state: str = "new", definition: str = "d", **control: Any) -> dict[str, Any]:
    """A folded run of a job with ``control`` (maxConcurrentRuns, pool, poolSlots, priority) in ``state``."""
    job = {"type": "SHELL", "source": SOURCE, "sourceLocation": "x.sh", "timeout": 1.0, "retryStrategy": RETRY}
    job.update(control)
    if "pool" in control:
        job.setdefault("poolSlots", 1)
    events: list[Event] = [RunSubmitted(definition_id=definition, definition=definition, definition_version=1,
                                        cluster="default", job=job)]  # fmt: skip
    queued, started = RunQueued(1, f"{run_id}-1"), RunStarted(1, "w1", "host", 100)
    events += {
        "new": [],
        "waiting": [RunWaiting(1, "Waiting for pool etl")],
        "queued": [queued],
        "running": [queued, started],
        "retrying": [queued, started, RunAttemptFailed(1, "WorkerLost", None, "lost"), RunRetryScheduled(2, "x")],
        "lost": [
            queued,
            started,
            RunAttemptFailed(1, "WorkerLost", None, "lost"),
            RunFailed(1, "WorkerLost", None, ""),
        ],
        "cancelled": [queued, started, RunCancelled("Cancelled by user", 1)],
    }[state]
    doc = fold(apply_run, run_id, events)
    assert doc is not None
    return {**doc, "order": float(order)}


class Case(NamedTuple):
    name: str
    runs: list[dict[str, Any]]
    admitted: list[str]
    waits: dict[str, str]


ROWS = [
    Case("a pool with room lets runs in, in submission order",
         [run("a", 1, pool="etl"), run("b", 2, pool="etl"), run("c", 3, pool="etl")],
         ["a", "b"], {"c": "Waiting for pool etl"}),
    Case("running, queued and retrying runs hold their slots",
         [run("a", 1, "running", pool="etl"), run("b", 2, "retrying", pool="etl"), run("c", 3, pool="etl")],
         [], {"c": "Waiting for pool etl"}),
    Case("a lost worker's run holds until WorkerLost ends it, then its slot is free",
         [run("a", 1, "running", pool="etl"), run("b", 2, "lost", pool="etl"), run("c", 3, pool="etl")],
         ["c"], {}),
    Case("a cancelled run frees its slot",
         [run("a", 1, "cancelled", pool="etl"), run("b", 2, "cancelled", pool="etl"), run("c", 3, pool="etl"),
          run("d", 4, pool="etl")],
         ["c", "d"], {}),
    Case("maxConcurrentRuns counts the definition's runs",
         [run("a", 1, "running", maxConcurrentRuns=2), run("b", 2, maxConcurrentRuns=2),
          run("c", 3, maxConcurrentRuns=2)],
         ["b"], {"c": "Waiting for a slot (maxConcurrentRuns 2)"}),
    Case("another definition's limit is its own",
         [run("a", 1, "running", maxConcurrentRuns=1), run("b", 2, definition="e", maxConcurrentRuns=1)],
         ["b"], {}),
    Case("higher priority starts first, equal priorities in submission order",
         [run("a", 1, pool="etl", priority=1), run("b", 2, pool="etl", priority=9), run("c", 3, pool="etl"),
          run("d", 4, pool="etl", priority=9)],
         ["b", "d"], {"c": "Waiting for pool etl", "a": "Waiting for pool etl"}),
    Case("a run needing more slots than are free blocks the later ones (no overtaking)",
         [run("a", 1, "running", pool="big"), run("b", 2, pool="big", poolSlots=3), run("c", 3, pool="big")],
         [], {"b": "Waiting for pool big", "c": "Waiting for pool big"}),
    Case("a run blocked at one gate does not block another gate's runs",
         [run("a", 1, "running", pool="etl", poolSlots=2), run("b", 2, pool="etl"), run("c", 3, pool="big")],
         ["c"], {"b": "Waiting for pool etl"}),
    Case("both gates must have room",
         [run("a", 1, "running", maxConcurrentRuns=1, pool="big"), run("b", 2, maxConcurrentRuns=1, pool="big")],
         [], {"b": "Waiting for a slot (maxConcurrentRuns 1)"}),
    Case("a pool that does not exist (deleted meanwhile) lets nothing through, and says so",
         [run("a", 1, pool="gone")], [], {"a": "Waiting for pool gone (no such pool)"}),
    Case("a waiting run already told why is still let through when a slot frees",
         [run("a", 1, "waiting", pool="etl")], ["a"], {}),
]  # fmt: skip


@pytest.mark.parametrize("row", cases(ROWS))
def test_the_gate_lets_through_what_fits(row: Case):
    waiting = [d for d in row.runs if is_waiting(d)]
    holding = [d for d in row.runs if holds_slots(d)]
    decision = decide_gate(waiting, holding, POOLS)
    assert (decision.admit, decision.wait) == (row.admitted, row.waits)


def test_a_pool_folds_from_its_events_and_deleting_frees_its_name():
    doc = fold(apply_pool, "pool:etl", [PoolCreated("etl", 2), PoolResized("etl", 4)])
    assert doc is not None and (doc["name"], doc["slots"]) == ("etl", 4)
    assert fold(apply_pool, "pool:etl", [PoolCreated("etl", 2), PoolDeleted("etl")]) is None
    again = fold(apply_pool, "pool:etl", [PoolCreated("etl", 2), PoolDeleted("etl"), PoolCreated("etl", 5)])
    assert again is not None and again["slots"] == 5


def test_pool_decisions():
    assert decide_create(None, "etl", 2) == [PoolCreated("etl", 2)]
    existing = {"name": "etl", "slots": 2}
    with pytest.raises(AlreadyExists):
        decide_create(existing, "etl", 3)
    assert decide_resize(existing, "etl", 1) == [PoolResized("etl", 1)]  # below what is held: allowed
    assert decide_resize(existing, "etl", 2) == []
    with pytest.raises(NotFound):
        decide_resize(None, "etl", 2)
    with pytest.raises(PoolInUse, match="2 run"):
        decide_delete(existing, "etl", 2)
    assert decide_delete(existing, "etl", 0) == [PoolDeleted("etl")]


def _definition(**config: Any) -> dict[str, Any]:
    return {"name": "n", "config": {"type": "SHELL", "source": SOURCE, "sourceLocation": "x.sh", **config}}


class Bad(NamedTuple):
    name: str
    config: dict[str, Any]
    field: str


BAD = [
    Bad("priority above 9", {"priority": 10}, "config.priority"),
    Bad("priority below 0", {"priority": -1}, "config.priority"),
    Bad("priority not a number", {"priority": "high"}, "config.priority"),
    Bad("no slots", {"pool": "etl", "poolSlots": 0}, "config.poolSlots"),
    Bad("slots without a pool", {"poolSlots": 2}, "config.poolSlots"),
    Bad("a pool that is no name", {"pool": "a b"}, "config.pool"),
    Bad("no concurrent runs", {"maxConcurrentRuns": 0}, "config.maxConcurrentRuns"),
    Bad("concurrent runs as text", {"maxConcurrentRuns": "2"}, "config.maxConcurrentRuns"),
]


@pytest.mark.parametrize("row", cases(BAD))
def test_bad_run_control_is_refused_naming_the_field(row: Bad):
    with pytest.raises(InvalidInput) as raised:
        normalize_definition(_definition(**row.config))
    assert raised.value.field == row.field


def test_run_control_is_kept_only_when_given():
    assert "priority" not in normalize_definition(_definition())["config"]
    config = normalize_definition(_definition(pool="etl", priority=7, maxConcurrentRuns=3))["config"]
    assert (config["pool"], config["poolSlots"], config["priority"], config["maxConcurrentRuns"]) == ("etl", 1, 7, 3)
