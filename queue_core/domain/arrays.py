"""Array jobs: a parent run whose N children share its job, each told its index; the rules of their lives."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from queue_core.eventlog.events import (
    Event,
    NewEvent,
    RunArrayChildrenEnded,
    RunCancelled,
    RunFailed,
    RunQueued,
    RunSubmitted,
    RunSucceeded,
)
from queue_core.specs.arrays import MAX_ARRAY, MIN_ARRAY, check_array_size

__all__ = [
    "ARRAY_CHILD_FAILED",
    "MAX_ARRAY",
    "MIN_ARRAY",
    "cancel_child",
    "check_array_size",
    "child_id",
    "child_submissions",
    "child_submitted",
    "decide_children_ended",
    "parent_of",
]

ARRAY_CHILD_FAILED = "ArrayChildFailed"  # the parent's reason when one of its children failed
ARRAY_CHILD_CANCELLED = "ArrayChildCancelled"  # one was cancelled on its own (the parent was not)
ENDED = ("SUCCEEDED", "FAILED", "CANCELLED")


def child_id(parent: str, index: int) -> str:
    """A child's run id, derived from its parent's: the same child is never submitted twice. An underscore,
    which no UUID holds, and which RQ allows in the job ids made from run ids."""
    return f"{parent}_{index}"


def parent_of(run_id: str) -> tuple[str, int] | None:
    """(parent id, index) of an array child's id; None for any other run."""
    parent, underscore, index = run_id.rpartition("_")
    if not underscore or not index.isdigit():
        return None
    return parent, int(index)


def child_submitted(
    parent: str, submitted: RunSubmitted, index: int, job: Mapping[str, Any] | None = None
) -> RunSubmitted:
    """Child ``index``'s submission: the parent's (``job`` in place of its job, for a for-each item), with no
    idempotency key. Only the parent is its workflow's task run: a child names its parent, not the workflow."""
    return replace(
        submitted,
        job=submitted.job if job is None else job,
        idempotency_key=None,
        workflow_run=None,
        task=None,
        array_size=None,
        array_parent=parent,
        array_index=index,
        for_each=None,
        n_to_n=(),
    )


def child_submissions(parent: str, submitted: RunSubmitted, indexes: range) -> tuple[list[NewEvent], dict[str, int]]:
    """The events that submit (and queue, in the same batch) the children at ``indexes``: each is the parent's
    submission with its own index, with no checks again (the parent's were made) and no idempotency key."""
    batch: list[NewEvent] = []
    expected: dict[str, int] = {}
    for index in indexes:
        child = child_id(parent, index)
        batch.append(NewEvent(child, child_submitted(parent, submitted, index)))
        batch.append(NewEvent(child, RunQueued(attempt=1, job_id=f"{child}-1")))
        expected[child] = 0
    return batch, expected


def decide_children_ended(parent: Mapping[str, Any], ended: Mapping[int, str]) -> list[Event]:
    """Note the children ``ended`` (index -> terminal status) that the parent has not noted yet, and end the
    parent after its last one: SUCCEEDED when all did, else FAILED (a child failed, after its retries, or was
    cancelled on its own). Nothing once the parent has ended (cancelled, most likely)."""
    if parent["status"] in ENDED or parent["array"] is None:
        return []
    noted = set(parent["array"]["ended"])
    new = sorted((i, s) for i, s in ended.items() if i not in noted and s in ENDED)
    if not new:
        return []
    events: list[Event] = [RunArrayChildrenEnded(indexes=tuple(i for i, _ in new), statuses=tuple(s for _, s in new))]
    counts = dict(parent["array"]["counts"])
    for _, status in new:
        counts[status] = counts.get(status, 0) + 1
    size = parent["array"]["size"]
    if len(noted) + len(new) < size:
        return events
    if counts.get("SUCCEEDED", 0) == size:
        return [*events, RunSucceeded(attempt=1)]
    failed, cancelled = counts.get("FAILED", 0), counts.get("CANCELLED", 0)
    reason = ARRAY_CHILD_FAILED if failed else ARRAY_CHILD_CANCELLED
    message = f"{failed} of {size} children failed, {cancelled} cancelled"
    return [*events, RunFailed(attempt=1, reason=reason, message=message)]


def cancel_child(doc: Mapping[str, Any]) -> RunCancelled | None:
    """The cancel of a child when its parent is cancelled; None when it has ended already."""
    if doc["status"] in ENDED:
        return None
    return RunCancelled(reason="Parent cancelled", attempt=doc["attempt"])
