"""Run-if: whether a workflow task runs, is skipped or fails upstream, given how each upstream relation ended.

A relation ends ``success``, ``failed`` or ``skipped`` (its task SKIPPED, or a branch of a condition task
not taken), or is still ``pending``. ``SKIPPED`` counts as done: ``ALL_DONE`` runs after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from queue_core.domain.runs import SUCCEEDED
from queue_core.domain.workflow_runs import SKIPPED, TASK_TERMINAL, UPSTREAM_FAILED
from queue_core.specs.run_if import ALL_SUCCESS

__all__ = ["RUN", "SUCCESS", "Relation", "decide_run_if", "relations_of"]

RUN = "RUN"
SUCCESS, FAILED_END, SKIPPED_END, PENDING_END = "success", "failed", "skipped", "pending"

Relation = tuple[str, str, str]  # (upstream task, how the relation ended, the words that say why)


def relations_of(
    deps: Sequence[str], outcomes: Mapping[str, str], tasks: Mapping[str, Mapping[str, Any]]
) -> list[Relation]:
    """How each relation into a task ended: its upstream task's status, and for a branch the condition's outcome."""
    out: list[Relation] = []
    for dep in deps:
        task = tasks[dep]
        status = task["status"]
        if status not in TASK_TERMINAL:
            out.append((dep, PENDING_END, ""))
        elif status == SKIPPED:
            out.append((dep, SKIPPED_END, f"Upstream task {dep} SKIPPED"))
        elif status != SUCCEEDED:
            out.append((dep, FAILED_END, f"Upstream task {dep} {status}"))
        elif dep in outcomes and task["outcome"] != outcomes[dep]:
            out.append((dep, SKIPPED_END, f"Branch not taken: condition {dep} is {task['outcome']}"))
        else:
            out.append((dep, SUCCESS, ""))
    return out


def decide_run_if(run_if: str, relations: Sequence[Relation]) -> str | tuple[str, str] | None:
    """``RUN``, ``(status, reason)`` for a task that will not run (``UPSTREAM_FAILED`` or ``SKIPPED``), or None
    while the rule cannot tell yet. A task with no upstream runs."""
    ends = [end for _, end, _ in relations]
    failed = next((r for r in relations if r[1] == FAILED_END), None)
    skipped = next((r for r in relations if r[1] == SKIPPED_END), None)
    if run_if == ALL_SUCCESS and failed is not None:
        return UPSTREAM_FAILED, failed[2]  # decided at the first failure: nothing that follows could change it
    if PENDING_END in ends:
        return None
    if not relations or run_if == "ALL_DONE":
        return RUN
    if run_if == ALL_SUCCESS:
        return RUN if skipped is None else (SKIPPED, skipped[2])
    if run_if in ("AT_LEAST_ONE_SUCCESS", "NONE_FAILED"):
        if (run_if == "NONE_FAILED" and failed is None and SUCCESS in ends) or (
            run_if == "AT_LEAST_ONE_SUCCESS" and SUCCESS in ends
        ):
            return RUN
        if failed is not None:
            return UPSTREAM_FAILED, failed[2]
        return SKIPPED, f"runIf {run_if}: every upstream task was skipped"
    if run_if == "AT_LEAST_ONE_FAILED":
        return RUN if failed is not None else (SKIPPED, f"runIf {run_if}: no upstream task failed")
    # ALL_FAILED
    not_failed = next((r for r in relations if r[1] != FAILED_END), None)
    if not_failed is None:
        return RUN
    said = "SUCCEEDED" if not_failed[1] == SUCCESS else "SKIPPED"
    return SKIPPED, f"runIf {run_if}: upstream task {not_failed[0]} {said}"
