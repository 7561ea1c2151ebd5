"""``N_TO_N`` dependencies: an array task's child i starts once child i of each upstream array succeeded.

Child i whose upstream child i ended otherwise (failed after its retries, or cancelled) never starts: it is
submitted cancelled, with a reason naming the upstream task and index, and so fails its parent
(``ArrayChildCancelled``) as any child cancelled on its own does; its siblings run on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from queue_core.domain.arrays import child_id, child_submitted
from queue_core.eventlog.events import NewEvent, RunCancelled, RunQueued, RunSubmitted

__all__ = ["blocked_reason", "n_to_n_children", "releasable"]


def releasable(array: Mapping[str, Any], upstream: Sequence[Mapping[str, Any]]) -> tuple[list[int], dict[int, str]]:
    """The parent's children that every upstream has decided (perhaps submitted already): those to run, and
    those that may not (index -> the upstream task whose child did not succeed)."""
    own = set(array["ended"])
    run: list[int] = []
    blocked: dict[int, str] = {}
    ended = [set(u["array"]["ended"]) for u in upstream]
    failed = [set(u["array"]["failed"]) for u in upstream]
    for index in range(array["size"]):
        if index in own or not all(index in e for e in ended):
            continue
        bad = next((u for u, f in zip(upstream, failed, strict=True) if index in f), None)
        if bad is None:
            run.append(index)
        else:
            blocked[index] = str(bad.get("task") or bad["id"])
    return run, blocked


def blocked_reason(task: str, index: int) -> str:
    return f"Not started: child {index} of upstream task {task} did not succeed"


def n_to_n_children(
    parent: str, submitted: RunSubmitted, run: Sequence[int], blocked: Mapping[int, str]
) -> tuple[list[NewEvent], dict[str, int]]:
    """The events that submit the children to run (queued) and the blocked ones (cancelled at once)."""
    batch: list[NewEvent] = []
    expected: dict[str, int] = {}
    for index in sorted([*run, *blocked]):
        child = child_id(parent, index)
        event = child_submitted(parent, submitted, index)
        batch.append(NewEvent(child, event))
        if index in blocked:
            batch.append(NewEvent(child, RunCancelled(reason=blocked_reason(blocked[index], index), attempt=1)))
        else:
            batch.append(NewEvent(child, RunQueued(attempt=1, job_id=f"{child}-1")))
        expected[child] = 0
    return batch, expected
