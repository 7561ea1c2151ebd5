"""For-each tasks' runs: an array parent whose children each run one input, ``concurrency`` at a time.

The children are submitted in index order (leaving out those carried from the round a repair reruns), a
window at a time: at most ``concurrency`` submitted and not ended. Each child's job has its own item.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from queue_core.domain.arrays import child_id, child_submitted
from queue_core.eventlog.events import NewEvent, RunQueued, RunSubmitted
from queue_core.specs.for_each import with_item

__all__ = ["carried_indexes", "for_each_children", "to_submit", "window"]


def to_submit(array: Mapping[str, Any]) -> list[int]:
    """The indexes a for-each parent runs, in the order it submits them: all but the carried ones."""
    carried = set(array["carried"])
    return [i for i in range(array["size"]) if i not in carried]


def window(array: Mapping[str, Any]) -> list[int]:
    """The indexes that may be submitted now, some perhaps already: past the ones that ended, up to
    ``concurrency`` more. Submission goes in order, so every child that ended is in the prefix before them."""
    order = to_submit(array)
    ended = len(array["ended"]) - len(array["carried"])
    return order[ended : min(len(order), ended + array["concurrency"])]


def for_each_children(
    parent: str, submitted: RunSubmitted, indexes: Sequence[int]
) -> tuple[list[NewEvent], dict[str, int]]:
    """The events that submit (and queue) the children at ``indexes``, each with its own item in its job."""
    assert submitted.for_each is not None
    items = submitted.for_each["items"]
    batch: list[NewEvent] = []
    expected: dict[str, int] = {}
    for index in indexes:
        child = child_id(parent, index)
        event = child_submitted(parent, submitted, index, with_item(submitted.job, items[index], index))
        batch.append(NewEvent(child, event))
        batch.append(NewEvent(child, RunQueued(attempt=1, job_id=f"{child}-1")))
        expected[child] = 0
    return batch, expected


def carried_indexes(items: Sequence[Any], previous: Mapping[str, Any], previous_items: Sequence[Any]) -> list[int]:
    """The children a repair need not run again: the previous round's run succeeded on the same item."""
    array = previous["array"]
    failed = set(array["failed"])
    done = [i for i in array["ended"] if i not in failed]
    return sorted(i for i in done if i < len(items) and i < len(previous_items) and items[i] == previous_items[i])
