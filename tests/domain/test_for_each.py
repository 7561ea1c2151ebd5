"""For-each and N_TO_N arrays as tables: the window, the items put in each child, what a repair carries, and
which N_TO_N children their upstream releases. No Redis."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from queue_core.domain.for_each import carried_indexes, for_each_children, window
from queue_core.domain.n_to_n import n_to_n_children, releasable
from queue_core.domain.runs import apply_run
from queue_core.eventlog.events import Event, RunArrayChildrenEnded, RunArrayExpanded, RunForEachCarried
from queue_core.specs.for_each import ForEachInputsError, resolve_items, with_item
from queue_core.specs.task_values import MissingValue
from tests.domain.test_runs import submitted
from tests.support.events import fold

PARENT = "5d1c2b3a-6a3e-4c55-9d7a-2f7c1b0e9a11"
ITEMS = ["a", "b c", 3, {"k": [1]}, "e"]


def for_each_parent(concurrency: int, *more: Event, items: list[Any] = ITEMS) -> dict[str, Any]:
    spec = {"items": items, "concurrency": concurrency, "previous": None}
    first = replace(submitted(), array_size=len(items), for_each=spec)
    doc = fold(apply_run, PARENT, [first, RunArrayExpanded(size=len(items)), *more])
    assert doc is not None
    return doc


def ended(*pairs: tuple[int, str]) -> RunArrayChildrenEnded:
    return RunArrayChildrenEnded(indexes=tuple(i for i, _ in pairs), statuses=tuple(s for _, s in pairs))


@pytest.mark.parametrize(
    ("name", "concurrency", "more", "expected"),
    [
        ("first window", 2, [], [0, 1]),
        ("one ended: one more may go", 2, [ended((1, "SUCCEEDED"))], [1, 2]),
        ("ends out of order still count", 2, [ended((1, "FAILED")), ended((0, "SUCCEEDED"))], [2, 3]),
        ("the window stops at the end", 3, [ended((0, "SUCCEEDED"), (1, "SUCCEEDED"), (2, "SUCCEEDED"))], [3, 4]),
        ("carried children are left out", 2, [RunForEachCarried(indexes=(0, 2), previous="p")], [1, 3]),
        ("wider than the items", 50, [], [0, 1, 2, 3, 4]),
    ],
)
def test_the_window_is_concurrency_children_past_the_ones_that_ended(
    name: str, concurrency: int, more: list[Event], expected: list[int]
):
    assert window(for_each_parent(concurrency, *more)["array"]) == expected


def test_each_child_gets_its_item_one_word_in_args_and_as_text_in_variables():
    first = replace(
        submitted(),
        job={**submitted().job, "args": "--city ${item} --n ${index}",
             "envVars": {"ITEM": "${item}", "S": {"secret": "x"}}},
        array_size=5,
        for_each={"items": ITEMS, "concurrency": 2, "previous": None},
    )  # fmt: skip
    batch, expected = for_each_children(PARENT, first, [1, 3])
    assert expected == {f"{PARENT}_1": 0, f"{PARENT}_3": 0}
    children = [new.event for new in batch if type(new.event).__name__ == "RunSubmitted"]
    assert [c.job["args"] for c in children] == ["--city 'b c' --n 1", """--city '{"k":[1]}' --n 3"""]  # type: ignore[attr-defined]
    assert children[1].job["envVars"] == {"ITEM": '{"k":[1]}', "S": {"secret": "x"}}  # type: ignore[attr-defined]
    assert all(c.for_each is None and c.array_size is None for c in children)  # type: ignore[attr-defined]
    assert with_item({"args": "${item}"}, "x", 0) == {"args": "x"}


def test_a_repair_carries_the_children_that_succeeded_on_the_same_item():
    previous = for_each_parent(2, ended((0, "SUCCEEDED"), (1, "FAILED"), (3, "SUCCEEDED"), (4, "CANCELLED")))
    assert carried_indexes(ITEMS, previous, ITEMS) == [0, 3]
    changed = [*ITEMS[:3], "other", "e"]
    assert carried_indexes(changed, previous, ITEMS) == [0]  # item 3 is another input now: it runs again
    assert carried_indexes(ITEMS[:2], previous, ITEMS) == [0]


def test_inputs_from_a_value_are_a_list_or_a_string_holding_one():
    values = {"list": ["x", 1], "text": '["y"]', "empty": [], "scalar": 4}

    def lookup(task: str, key: str) -> Any:
        if key not in values:
            raise MissingValue(task, key, f"task {task} published no value {key}")
        return values[key]

    assert resolve_items("${tasks.t.values.list}", lookup) == ["x", 1]
    assert resolve_items("${tasks.t.values.text}", lookup) == ["y"]
    assert resolve_items(["lit"], lookup) == ["lit"]
    with pytest.raises(ForEachInputsError, match=r"^forEach inputs \$\{tasks\.t\.values\.empty\} is empty"):
        resolve_items("${tasks.t.values.empty}", lookup)
    with pytest.raises(ForEachInputsError, match="must be a list"):
        resolve_items("${tasks.t.values.scalar}", lookup)
    with pytest.raises(MissingValue, match=r"published no value nope"):
        resolve_items("${tasks.t.values.nope}", lookup)


def _array(size: int, *more: Event, task: str = "a") -> dict[str, Any]:
    doc = fold(
        apply_run, PARENT, [replace(submitted(), array_size=size, task=task), RunArrayExpanded(size=size), *more]
    )
    assert doc is not None
    return doc


def test_n_to_n_releases_child_i_once_every_upstream_child_i_ended_and_blocks_it_when_one_did_not_succeed():
    own = _array(4, ended((0, "SUCCEEDED")), task="b")
    first = _array(4, ended((0, "SUCCEEDED"), (1, "SUCCEEDED"), (2, "FAILED"), (3, "SUCCEEDED")), task="a")
    second = _array(4, ended((1, "SUCCEEDED"), (2, "SUCCEEDED")), task="z")
    run, blocked = releasable(own["array"], [first, second])
    assert (run, blocked) == ([1], {2: "a"})  # 0 ended already; 3 waits for z's child 3
    batch, expected = n_to_n_children(PARENT, replace(submitted(), array_size=4, n_to_n=("x",)), run, blocked)
    assert [(new.aggregate, type(new.event).__name__) for new in batch] == [
        (f"{PARENT}_1", "RunSubmitted"), (f"{PARENT}_1", "RunQueued"),
        (f"{PARENT}_2", "RunSubmitted"), (f"{PARENT}_2", "RunCancelled"),
    ]  # fmt: skip
    assert batch[3].event.reason == "Not started: child 2 of upstream task a did not succeed"  # type: ignore[attr-defined]
    assert expected == {f"{PARENT}_1": 0, f"{PARENT}_2": 0}
