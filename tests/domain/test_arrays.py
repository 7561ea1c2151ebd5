"""Array jobs as tables: the size rule, the children derived from the parent, and how the parent ends.

Each row folds a parent's history through ``apply_run``, decides on the children that ended, folds the
decision on, and says where the parent ends up. No Redis.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from queue_core.domain.arrays import (
    ARRAY_CHILD_FAILED,
    check_array_size,
    child_id,
    child_submissions,
    decide_children_ended,
    parent_of,
)
from queue_core.domain.names import is_id
from queue_core.domain.runs import apply_run
from queue_core.errors import InvalidInput
from queue_core.eventlog.events import Event, RunArrayChildrenEnded, RunArrayExpanded, RunCancelled, RunSubmitted
from tests.domain.test_runs import submitted
from tests.support.events import fold

PARENT = "0b7f9c1e-6a3e-4c55-9d7a-2f7c1b0e9a11"


def parent(size: int, *more: Event) -> dict[str, Any]:
    doc = fold(apply_run, PARENT, [replace(submitted(), array_size=size), RunArrayExpanded(size=size), *more])
    assert doc is not None
    return doc


@pytest.mark.parametrize("size", [2, 3, 10_000])
def test_sizes_from_2_to_10000_are_arrays(size: int):
    assert check_array_size(size) == size


@pytest.mark.parametrize("size", [1, 0, -3, 10_001, True, 2.5, "4", None])
def test_other_sizes_are_refused_naming_the_field(size: Any):
    with pytest.raises(InvalidInput, match=r"^array: must be a whole number from 2 to 10,000"):
        check_array_size(size)


def test_a_child_id_is_its_parents_and_its_index_and_is_a_run_id():
    assert child_id(PARENT, 7) == f"{PARENT}_7"
    assert parent_of(child_id(PARENT, 7)) == (PARENT, 7)
    assert parent_of(PARENT) is None
    assert is_id(child_id(PARENT, 9999)) and is_id(PARENT)


def test_children_are_the_parents_submission_with_their_index_submitted_and_queued_together():
    batch, expected = child_submissions(PARENT, replace(submitted(), array_size=3, idempotency_key="k"), range(1, 3))
    assert expected == {f"{PARENT}_1": 0, f"{PARENT}_2": 0}
    assert [(new.aggregate, type(new.event).__name__) for new in batch] == [
        (f"{PARENT}_1", "RunSubmitted"),
        (f"{PARENT}_1", "RunQueued"),
        (f"{PARENT}_2", "RunSubmitted"),
        (f"{PARENT}_2", "RunQueued"),
    ]
    child = fold(apply_run, f"{PARENT}_2", [new.event for new in batch[2:]])
    assert child is not None
    assert (child["array_parent"], child["array_index"], child["array"]) == (PARENT, 2, None)
    assert (child["status"], child["reason"], child["idempotency_key"]) == ("PENDING", "In queue", None)
    first = batch[0].event
    assert isinstance(first, RunSubmitted) and first.job == submitted().job


@pytest.mark.parametrize(
    ("name", "size", "before", "ended", "types", "then"),
    [
        ("some end: noted, the parent runs on", 3, {}, {0: "SUCCEEDED"}, ["RunArrayChildrenEnded"], "RUNNING"),
        (
            "the last one succeeds",
            2,
            {0: "SUCCEEDED"},
            {1: "SUCCEEDED"},
            ["RunArrayChildrenEnded", "RunSucceeded"],
            "SUCCEEDED",
        ),
        (
            "one failed: FAILED at the end",
            2,
            {0: "FAILED"},
            {1: "SUCCEEDED"},
            ["RunArrayChildrenEnded", "RunFailed"],
            "FAILED",
        ),
        ("an end seen twice is noted once", 3, {0: "SUCCEEDED"}, {0: "SUCCEEDED"}, [], "RUNNING"),
        (
            "a child cancelled alone fails the parent",
            2,
            {},
            {0: "CANCELLED", 1: "SUCCEEDED"},
            ["RunArrayChildrenEnded", "RunFailed"],
            "FAILED",
        ),
    ],
)
def test_the_parent_notes_its_children_and_ends_after_the_last(
    name: str, size: int, before: dict[int, str], ended: dict[int, str], types: list[str], then: str
):
    noted = [RunArrayChildrenEnded(tuple(before), tuple(before.values()))] if before else []
    doc = parent(size, *noted)
    events = decide_children_ended(doc, ended)
    assert [type(e).__name__ for e in events] == types, name
    after = fold(apply_run, PARENT, [replace(submitted(), array_size=size), RunArrayExpanded(size), *noted, *events])
    assert after is not None and after["status"] == then, name
    assert sum(after["array"]["counts"].values()) == len(set(before) | set(ended))
    if then == "FAILED" and "FAILED" in {*before.values(), *ended.values()}:
        assert after["reason"] == ARRAY_CHILD_FAILED


def test_a_cancelled_parent_notes_nothing_more():
    doc = parent(2, RunCancelled())
    assert decide_children_ended(doc, {0: "CANCELLED", 1: "CANCELLED"}) == []
