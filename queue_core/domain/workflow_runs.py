"""Workflow runs: the one fold of a workflow run's events, and the view ``workflow status`` shows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from queue_core.dag import levels
from queue_core.domain.runs import CANCELLED, FAILED, PENDING, RUNNING, SUCCEEDED, order_score
from queue_core.eventlog.events import (
    ConditionEvaluated,
    PrerunScratchRemoved,
    Recorded,
    ReferenceSatisfied,
    TaskFinished,
    TaskRerunRequested,
    TaskSkipped,
    TaskSubmitted,
    WorkflowRunCancelled,
    WorkflowRunFinished,
    WorkflowRunStarted,
    WorkflowRunWaiting,
)

__all__ = [
    "SKIPPED",
    "SUBMITTED",
    "TASK_TERMINAL",
    "UPSTREAM_FAILED",
    "apply_workflow_run",
    "is_active",
    "is_going",
    "is_prerun",
    "is_waiting",
    "reference_label",
    "waiting_reason",
]

UPSTREAM_FAILED = "UPSTREAM_FAILED"
SKIPPED = "SKIPPED"  # a branch not taken, a run-if rule not met: done, neither succeeded nor failed
TASK_TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED, UPSTREAM_FAILED, SKIPPED})
SUBMITTED = "Submitted"  # the reason of a task whose child run exists; its status comes from that run
WAITING_FOR_UPSTREAM = "Waiting for upstream tasks"
WORKFLOW_CANCELLED = "Workflow run cancelled"

Doc = dict[str, Any]


def reference_label(ref: dict[str, Any]) -> str:
    return f"{ref['kind']} {ref['name']}"


def waiting_reason(refs: list[dict[str, Any]]) -> str | None:
    """``Waiting for reference NAME`` for the first reference not yet satisfied, else None."""
    for ref in refs:
        if ref.get("run") is None:
            return f"Waiting for reference {ref['name']}"
    return None


def is_prerun(doc: Doc) -> bool:
    """Whether a workflow run's document, or a run's (a task of one), is a pre-run's."""
    return bool(doc["prerun"]) if "workflow" in doc else bool(doc["job"].get("prerun"))


def is_going(doc: Doc) -> bool:
    """Whether the workflow run (or its view) is still going: not ended, or a task's run not ended yet."""
    return doc["status"] in (PENDING, RUNNING) or any(is_active(t) for t in doc["tasks"].values())


def is_active(task: Doc) -> bool:
    """Submitted in this round and not yet finished: its child run is pending or running."""
    return task["run"] is not None and task["status"] not in TASK_TERMINAL


def is_waiting(task: Doc) -> bool:
    """Not submitted in this round and not decided either: it may still run."""
    return task["run"] is None and task["status"] not in TASK_TERMINAL


def _fresh_task(reason: str) -> Doc:
    return {
        "status": PENDING,
        "reason": reason,
        "run": None,
        "runs": [],
        "attempts": 0,
        "submitted_at": None,
        "finished_at": None,
        "values": None,  # what the task's run published, once it ended
        "outcome": None,  # a condition task's branch: "true" or "false"
    }


def _started(doc: Doc | None, rec: Recorded, event: WorkflowRunStarted) -> Doc:
    refs = [{**ref, "run": None} for ref in event.references]
    waiting = waiting_reason(refs)
    return {
        "id": rec.aggregate,
        "workflow": event.workflow,
        "workflow_id": event.workflow_id,
        "workflow_version": event.workflow_version,
        "logical_date": event.logical_date,
        "status": PENDING,
        "reason": waiting or "Recently submitted",
        "started_at": rec.time,
        "finished_at": None,
        "updated_at": rec.time,
        "order": order_score(rec.position),
        "concurrency": event.concurrency,
        "fail_fast": event.fail_fast,
        "references": refs,
        "reference_timeout": event.reference_timeout,
        "plan": event.tasks,
        # Tasks in the order decisions visit them (by level, then name): computed once per run, not per decision.
        "task_order": [
            name for level in levels({n: t["depends_on"] for n, t in event.tasks.items()}) for name in level
        ],
        "tasks": {name: _fresh_task(waiting or WAITING_FOR_UPSTREAM) for name in sorted(event.tasks)},
        "reruns": [],
        "prerun": event.prerun,
        "max_concurrent_runs": event.max_concurrent_runs,  # the workflow's limit on its runs at once
        # A pre-run's scratch outputs: "kept" until removed, then when and from which depots.
        "scratch": {"status": "kept", "removed_at": None, "depots": [], "failed": []} if event.prerun else None,
    }


def _reference_satisfied(doc: Doc, rec: Recorded, event: ReferenceSatisfied) -> Doc:
    refs = [
        {**ref, "run": event.run} if (ref["kind"], ref["name"]) == (event.kind, event.name) else ref
        for ref in doc["references"]
    ]
    waiting = waiting_reason(refs)
    tasks = {
        name: {**task, "reason": waiting or WAITING_FOR_UPSTREAM} if is_waiting(task) else task
        for name, task in doc["tasks"].items()
    }
    return {**doc, "references": refs, "reason": waiting or doc["reason"], "tasks": tasks, "updated_at": rec.time}


def _with_task(doc: Doc, name: str, rec: Recorded, **changes: Any) -> Doc:
    return {**doc, "tasks": {**doc["tasks"], name: {**doc["tasks"][name], **changes}}, "updated_at": rec.time}


def _task_submitted(doc: Doc, rec: Recorded, event: TaskSubmitted) -> Doc:
    task = doc["tasks"][event.task]
    changed = _with_task(
        doc,
        event.task,
        rec,
        status=PENDING,
        reason=SUBMITTED,
        run=event.run,
        runs=[*task["runs"], event.run],
        attempts=0,
        submitted_at=rec.time,
        finished_at=None,
    )
    if doc["status"] == PENDING:
        changed = {**changed, "status": RUNNING, "reason": None}
    return changed


def _task_finished(doc: Doc, rec: Recorded, event: TaskFinished) -> Doc:
    if doc["tasks"][event.task]["run"] != event.run:
        return doc  # an older round's run: its end is already history
    return _with_task(
        doc, event.task, rec, status=event.status, reason=event.reason, attempts=event.attempts,
        finished_at=rec.time, values=event.values,
    )  # fmt: skip


def _condition_evaluated(doc: Doc, rec: Recorded, event: ConditionEvaluated) -> Doc:
    status = FAILED if event.outcome is None else SUCCEEDED
    return _with_task(
        doc, event.task, rec, status=status, reason=event.reason, outcome=event.outcome, submitted_at=rec.time,
        finished_at=rec.time,
    )  # fmt: skip


def _task_skipped(doc: Doc, rec: Recorded, event: TaskSkipped) -> Doc:
    return _with_task(doc, event.task, rec, status=event.status, reason=event.reason, finished_at=rec.time)


def _rerun_requested(doc: Doc, rec: Recorded, event: TaskRerunRequested) -> Doc:
    tasks = dict(doc["tasks"])
    for name in event.tasks:
        tasks[name] = {**_fresh_task(WAITING_FOR_UPSTREAM), "runs": tasks[name]["runs"]}
    rerun = {"at": rec.time, "tasks": list(event.tasks), "mode": event.mode}
    return {
        **doc,
        "status": RUNNING,
        "reason": None,
        "finished_at": None,
        "tasks": tasks,
        "reruns": [*doc["reruns"], rerun],
        "updated_at": rec.time,
    }


def _cancelled(doc: Doc, rec: Recorded, event: WorkflowRunCancelled) -> Doc:
    tasks = {
        name: {**task, "status": CANCELLED, "reason": WORKFLOW_CANCELLED, "finished_at": rec.time}
        if is_waiting(task)
        else task
        for name, task in doc["tasks"].items()
    }
    return {**doc, "status": CANCELLED, "reason": event.reason, "finished_at": rec.time, "tasks": tasks,
            "updated_at": rec.time}  # fmt: skip


def _waiting(doc: Doc, rec: Recorded, event: WorkflowRunWaiting) -> Doc:
    if doc["status"] != PENDING:
        return doc  # it started meanwhile: the reason is history
    return {**doc, "reason": event.reason, "updated_at": rec.time}


def _finished(doc: Doc, rec: Recorded, event: WorkflowRunFinished) -> Doc:
    return {**doc, "status": event.status, "reason": event.reason, "finished_at": rec.time, "updated_at": rec.time}


def _scratch_removed(doc: Doc, rec: Recorded, event: PrerunScratchRemoved) -> Doc:
    if doc["scratch"] is None:
        return doc  # not a pre-run: it has no scratch
    scratch = {
        "status": "partly removed" if event.failed else "removed",
        "removed_at": rec.time,
        "depots": sorted({*doc["scratch"]["depots"], *event.depots}),
        "failed": list(event.failed),
    }
    return {**doc, "scratch": scratch, "updated_at": rec.time}


_HANDLERS: dict[str, Callable[[Any, Recorded, Any], Doc]] = {
    "WorkflowRunStarted": _started,
    "ReferenceSatisfied": _reference_satisfied,
    "TaskSubmitted": _task_submitted,
    "TaskFinished": _task_finished,
    "ConditionEvaluated": _condition_evaluated,
    "TaskSkipped": _task_skipped,
    "TaskRerunRequested": _rerun_requested,
    "WorkflowRunCancelled": _cancelled,
    "WorkflowRunFinished": _finished,
    "WorkflowRunWaiting": _waiting,
    "PrerunScratchRemoved": _scratch_removed,
}
WORKFLOW_RUN_EVENTS = frozenset(_HANDLERS)


def apply_workflow_run(doc: Doc | None, rec: Recorded) -> Doc | None:
    """Fold one workflow-run event into its document; pure, like every fold."""
    handler = _HANDLERS.get(rec.type)
    if handler is None or (doc is None and handler is not _started):
        return doc
    return handler(doc, rec, rec.event)
