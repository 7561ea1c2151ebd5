"""The decisions that move a workflow run: record ended tasks, skip, submit what is ready, finish; reruns.

Pure functions of the workflow run's document and the child runs the caller loaded. The caller
appends what they return with the workflow run's expected version, so each decision lands once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from queue_core.dag import descendants
from queue_core.domain.run_if import SUCCESS, Relation, decide_run_if, relations_of
from queue_core.domain.runs import CANCELLED, FAILED, PENDING, SUCCEEDED, TERMINAL
from queue_core.domain.workflow_runs import (
    SKIPPED,
    TASK_TERMINAL,
    UPSTREAM_FAILED,
    is_active,
    is_going,
    is_waiting,
)
from queue_core.errors import InvalidInput, NotFound, Remedy
from queue_core.eventlog.events import (
    ConditionEvaluated,
    Event,
    NewEvent,
    ReferenceSatisfied,
    RunCancelled,
    RunSubmitted,
    TaskFinished,
    TaskSkipped,
    TaskSubmitted,
    WorkflowRunFinished,
)
from queue_core.specs.conditions import ConditionError, evaluate
from queue_core.specs.for_each import ForEachInputsError, resolve_items
from queue_core.specs.run_if import ALL_SUCCESS
from queue_core.specs.task_values import MissingValue, substitute
from queue_core.timefmt import parse_utc

__all__ = [
    "FAIL_FAST_CANCEL",
    "REFERENCE_TIMEOUT",
    "Advance",
    "child_run_id",
    "decide_advance",
    "rerun_tasks",
    "value_lookup",
]

REFERENCE_TIMEOUT = "ReferenceTimeout"

FAIL_FAST_CANCEL = "Cancelled by failFast"
_NAMESPACE = uuid.UUID("6f1d3c52-3a57-4c1e-9a3e-2f6a0c1b7d90")

Doc = dict[str, Any]


def child_run_id(workflow_run: str, task: str, round_number: int) -> str:
    """The run id of a task's ``round_number``-th run (0 first): the same decision always names the same run."""
    return str(uuid.uuid5(_NAMESPACE, f"{workflow_run}/{task}/{round_number}"))


@dataclass
class Advance:
    """What one decision appends: events on the workflow run, and events on child runs with their versions."""

    events: list[Event] = field(default_factory=list)
    children: list[NewEvent] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=dict)
    incomplete: bool = False  # a running child must be cancelled but was not loaded: load them all, decide again


_DONE_WELL = frozenset({SUCCEEDED, SKIPPED})  # a workflow run whose tasks all ended so succeeded


def _not_succeeded(tasks: Mapping[str, Doc]) -> list[str]:
    return [n for n in sorted(tasks) if tasks[n]["status"] in (FAILED, CANCELLED)]


def _finish_reason(tasks: Mapping[str, Doc]) -> str:
    failed = [f"{n} {tasks[n]['status']}" for n in _not_succeeded(tasks)]
    if not failed:
        failed = [f"{n} {UPSTREAM_FAILED}" for n in sorted(tasks) if tasks[n]["status"] == UPSTREAM_FAILED]
    return ("Task " if len(failed) == 1 else "Tasks ") + ", ".join(failed[:5]) + (" ..." if len(failed) > 5 else "")


def _cancel_children(
    out: Advance, tasks: Mapping[str, Doc], children: Mapping[str, tuple[Doc, int]], reason: str
) -> None:
    for name in sorted(tasks):
        task = tasks[name]
        if not is_active(task):
            continue
        loaded = children.get(task["run"])
        if loaded is None:
            out.incomplete = True
            continue
        child, version = loaded
        if child["status"] not in TERMINAL:
            out.children.append(NewEvent(child["id"], RunCancelled(reason=reason, attempt=child["attempt"])))
            out.expected[child["id"]] = version


def value_lookup(tasks: Mapping[str, Doc]) -> Callable[[str, str], Any]:
    """(task, key) -> the value that task published in this round; ``MissingValue`` naming what is missing."""

    def lookup(task: str, key: str) -> Any:
        found = tasks[task]
        if found["status"] != SUCCEEDED:
            raise MissingValue(task, key, f"task {task} is {found['status']}")
        values = found["values"]
        if values is None or key not in values:
            raise MissingValue(task, key, f"task {task} published no value {key}")
        return values[key]

    return lookup


def _job_with_values(job: Mapping[str, Any], tasks: Mapping[str, Doc]) -> Mapping[str, Any]:
    """The plan's job with the values it references put in: args (each value one word), variables, inline SQL."""
    lookup = value_lookup(tasks)
    out = dict(job)
    if isinstance(job.get("args"), str):
        out["args"] = substitute(job["args"], lookup, quote=True)
    if job.get("envVars"):
        out["envVars"] = {k: v if not isinstance(v, str) else substitute(v, lookup) for k, v in job["envVars"].items()}
    if job.get("pipeline") is not None:
        out["pipeline"] = substitute(job["pipeline"], lookup)
    return out


def _for_each(doc: Doc, name: str, tasks: Mapping[str, Doc]) -> dict[str, Any] | None:
    """A for-each task's items (its inputs, resolved now), window, and on a repair the run it repairs."""
    spec = doc["plan"][name].get("for_each")
    if spec is None:
        return None
    items = resolve_items(spec["inputs"], value_lookup(tasks))
    runs = doc["tasks"][name]["runs"]
    repairing = bool(runs) and bool(doc["reruns"]) and doc["reruns"][-1]["mode"] == "repair"
    return {"items": items, "concurrency": spec["concurrency"], "previous": runs[-1] if repairing else None}


def _submission(doc: Doc, name: str, tasks: Mapping[str, Doc]) -> tuple[str, RunSubmitted]:
    plan = doc["plan"][name]
    run_id = child_run_id(doc["id"], name, len(doc["tasks"][name]["runs"]))
    for_each = _for_each(doc, name, tasks)
    submitted = RunSubmitted(
        definition_id=plan["definition_id"],
        definition=plan["definition"],
        definition_version=plan["definition_version"],
        cluster=plan["cluster"],
        job=_job_with_values(plan["job"], tasks),
        logical_date=doc["logical_date"],
        workflow_run=doc["id"],
        task=name,
        tags=tuple(plan.get("tags", ())),  # a plan started before tags has none
        array_size=plan.get("array") if for_each is None else len(for_each["items"]),  # only an array's has one
        for_each=for_each,
        n_to_n=tuple(tasks[u]["run"] for u in plan.get("n_to_n", ())),
    )
    return run_id, submitted


def decide_advance(
    doc: Doc,
    children: Mapping[str, tuple[Doc, int]],
    satisfied: Mapping[tuple[str, str], str],
    now: datetime | None = None,
) -> Advance:
    """Everything the workflow run should record now, given the child runs loaded (run id -> doc, version)
    and the references found satisfied ((kind, name) -> run id).

    ``now``: past the run's ``referenceTimeout`` with a reference still missing, its waiting tasks fail.
    """
    out = Advance()
    tasks = {name: dict(task) for name, task in doc["tasks"].items()}
    for name in sorted(tasks):
        task = tasks[name]
        loaded = children.get(task["run"]) if is_active(task) else None
        if loaded is not None and loaded[0]["status"] in TERMINAL:
            child = loaded[0]
            ended = TaskFinished(
                task=name, run=child["id"], status=child["status"], reason=child["reason"],
                attempts=len(child["attempts"]), values=child["values"],
            )  # fmt: skip
            out.events.append(ended)
            task.update(status=child["status"], reason=child["reason"], values=child["values"])
    if doc["status"] == CANCELLED:
        _cancel_children(out, tasks, children, doc["reason"] or "Cancelled by user")
        return out
    if doc["status"] in (SUCCEEDED, FAILED) and not any(is_active(t) for t in tasks.values()):
        return out
    missing: list[Doc] = []
    for ref in doc["references"]:
        if ref["run"] is None:
            run = satisfied.get((ref["kind"], ref["name"]))
            if run is None:
                missing.append(ref)
            else:
                out.events.append(ReferenceSatisfied(kind=ref["kind"], name=ref["name"], run=run))
    if missing:
        if _reference_timed_out(doc, now):
            _fail_waiting(out, doc, tasks, missing[0])
        return out
    order = doc["task_order"]
    # One pass in dependency order: a task decided here (a condition evaluated, a branch skipped) is seen
    # by the tasks after it in the same pass.
    ready: list[str] = []
    for name in order:
        task = tasks[name]
        if not is_waiting(task):
            continue
        plan = doc["plan"][name]
        verdict = decide_run_if(plan["run_if"], _relations(plan, tasks, ready))
        if verdict is None:
            continue
        if isinstance(verdict, tuple):
            status, reason = verdict
            out.events.append(TaskSkipped(task=name, status=status, reason=reason))
            task.update(status=status, reason=reason)
        elif plan["condition"] is not None:  # verdict is RUN
            _evaluate(out, name, plan["condition"], tasks)
        else:
            ready.append(name)
    failures = _not_succeeded(tasks)
    if doc["fail_fast"] and failures:
        reason = f"Not started: failFast after task {failures[0]} {tasks[failures[0]]['status']}"
        for name in order:
            if is_waiting(tasks[name]):
                out.events.append(TaskSkipped(task=name, status=CANCELLED, reason=reason))
                tasks[name].update(status=CANCELLED, reason=reason)
        _cancel_children(out, tasks, children, FAIL_FAST_CANCEL)
    running = sum(1 for t in tasks.values() if is_active(t))
    slots = len(order) if doc["concurrency"] is None else doc["concurrency"] - running
    for name in ready:
        if slots <= 0:
            break
        task = tasks[name]
        if not is_waiting(task):
            continue  # cancelled by failFast above
        if any(tasks[u]["run"] is None for u in doc["plan"][name].get("n_to_n", ())):
            continue  # its upstream array was not submitted after all (no slot, a missing value): not yet
        try:
            run_id, submitted = _submission(doc, name, tasks)
        except (MissingValue, ForEachInputsError) as exc:
            reason = f"{type(exc).__name__.removesuffix('Error')}: {exc}"
            out.events.append(TaskSkipped(task=name, status=FAILED, reason=reason))
            task.update(status=FAILED, reason=reason)
            continue
        out.events.append(TaskSubmitted(task=name, run=run_id))
        out.children.append(NewEvent(run_id, submitted))
        out.expected[run_id] = 0
        task.update(status=PENDING, run=run_id)
        slots -= 1
    if all(t["status"] in TASK_TERMINAL for t in tasks.values()):
        if all(t["status"] in _DONE_WELL for t in tasks.values()):
            out.events.append(WorkflowRunFinished(status=SUCCEEDED))
        else:
            out.events.append(WorkflowRunFinished(status=FAILED, reason=_finish_reason(tasks)))
    return out


def _relations(plan: Doc, tasks: Mapping[str, Doc], ready: list[str]) -> list[Relation]:
    """How each relation into a task ended; an ``N_TO_N`` one counts as met once its upstream array has a run
    (or gets one in this decision): each child then waits for its own upstream child."""
    relations = relations_of(plan["depends_on"], plan["outcomes"], tasks)
    n_to_n = plan.get("n_to_n")
    if not n_to_n:
        return relations
    return [
        (dep, SUCCESS, "") if dep in n_to_n and (tasks[dep]["run"] is not None or dep in ready) else (dep, end, why)
        for dep, end, why in relations
    ]


def _evaluate(out: Advance, name: str, condition: str, tasks: dict[str, Doc]) -> None:
    """A condition task decides at once, on the values of its upstream tasks: no run, no worker."""
    try:
        outcome: str | None = "true" if evaluate(condition, value_lookup(tasks)) else "false"
        reason = f"Condition {outcome}"
        status = SUCCEEDED
    except (ConditionError, MissingValue) as exc:
        outcome, reason, status = None, f"ConditionError: {exc}"[:500], FAILED
    out.events.append(ConditionEvaluated(task=name, outcome=outcome, reason=reason))
    tasks[name].update(status=status, reason=reason, outcome=outcome)


def _reference_timed_out(doc: Doc, now: datetime | None) -> bool:
    minutes = doc.get("reference_timeout")
    if minutes is None or now is None:
        return False
    return now >= parse_utc(doc["started_at"]) + timedelta(minutes=minutes)


def _fail_waiting(out: Advance, doc: Doc, tasks: dict[str, Doc], ref: Doc) -> None:
    """Past the reference timeout: every task still waiting fails, and so does the workflow run."""
    minutes = doc["reference_timeout"]
    reason = (
        f"{REFERENCE_TIMEOUT}: no SUCCEEDED run of {ref['kind']} {ref['name']} for {doc['logical_date']} "
        f"within {minutes:g} minutes"
    )
    for name in doc["task_order"]:
        if is_waiting(tasks[name]):
            out.events.append(TaskSkipped(task=name, status=FAILED, reason=reason))
            tasks[name].update(status=FAILED, reason=reason)
    if not any(is_active(t) for t in tasks.values()):
        out.events.append(WorkflowRunFinished(status=FAILED, reason=reason))


def rerun_tasks(doc: Doc, task: str | None, downstream: bool) -> tuple[str, ...]:
    """The tasks a rerun resets: ``task`` alone, ``task`` and its downstream, or (``task`` None) a repair.

    Refused while the workflow run is still going, and for a task whose upstream did not succeed.
    """
    if is_going(doc):
        raise InvalidInput(f"workflow run {doc['id']} is still {doc['status']}; wait for it to end or cancel it")
    graph = {name: doc["plan"][name]["depends_on"] for name in doc["tasks"]}
    tasks = doc["tasks"]
    if task is None:
        broken = [n for n, t in tasks.items() if t["status"] not in _DONE_WELL]
        if not broken:
            raise InvalidInput(f"nothing to repair: every task of workflow run {doc['id']} SUCCEEDED")
        chosen = set(broken) | descendants(graph, broken)
    else:
        if task not in tasks:
            raise NotFound(f"workflow run {doc['id']} has no task {task!r}; it has {', '.join(sorted(tasks))}")
        # Skipped upstream tasks count as done; failed ones too for a task whose runIf runs after failures.
        tolerated = _DONE_WELL if doc["plan"][task]["run_if"] == ALL_SUCCESS else TASK_TERMINAL
        upstream = next((d for d in graph[task] if tasks[d]["status"] not in tolerated), None)
        if upstream is not None:
            raise InvalidInput(
                f"task {task!r} cannot rerun: its upstream task {upstream!r} is {tasks[upstream]['status']}; "
                "rerun that one with its downstream tasks, or repair the workflow run",
                remedy=Remedy.RERUN_DOWNSTREAM,
                subject=upstream,
            )
        chosen = {task} | (descendants(graph, [task]) if downstream else set())
    return tuple(name for name in doc["task_order"] if name in chosen)
