"""The words of run-if and branches in a workflow file, and the checks on what its relations and references name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from queue_core.dag import ancestors
from queue_core.errors import InvalidInput
from queue_core.specs import conditions
from queue_core.specs.task_values import references_in

__all__ = ["ALL_SUCCESS", "RUN_IF_VALUES", "check_relations", "task_references"]

ALL_SUCCESS = "ALL_SUCCESS"
# Databricks' set: when a task runs, given how its upstream tasks ended (SKIPPED counts as done).
RUN_IF_VALUES = (
    ALL_SUCCESS,
    "AT_LEAST_ONE_SUCCESS",
    "NONE_FAILED",
    "ALL_DONE",
    "AT_LEAST_ONE_FAILED",
    "ALL_FAILED",
)


def task_references(task: Mapping[str, Any], field: str) -> list[tuple[str, str]]:
    """Every ``(task, key)`` value a workflow task reads: in its condition, args, variables, inline job and
    for-each inputs."""
    found: list[tuple[str, str]] = []
    if task.get("condition") is not None:
        found += conditions.references(conditions.parse(task["condition"], f"{field}.condition"))
    found += references_in(task.get("args"), f"{field}.args")
    found += references_in(task.get("envVars"), f"{field}.envVars")
    if isinstance((task.get("forEach") or {}).get("inputs"), str):
        found += references_in(task["forEach"]["inputs"], f"{field}.forEach.inputs")
    if task.get("job") is not None:
        found += references_in(task["job"]["config"].get("pipeline"), f"{field}.job.pipeline")
    return found


def check_relations(tasks: Mapping[str, Mapping[str, Any]], where: str) -> None:
    """A branch (``NAME:true``) leaves a condition task; a value reference names a task upstream of its reader."""
    graph = {name: list(task["depends_on"]) for name, task in tasks.items()}
    for name in sorted(tasks):
        task = tasks[name]
        for upstream in sorted(task.get("outcomes", {})):
            if tasks[upstream].get("condition") is None:
                raise InvalidInput(
                    f"task {name!r} follows a branch of {upstream!r}, which is not a condition task", where
                )
        refs = task_references(task, f"{where}.{name}")
        if not refs:
            continue
        before = ancestors(graph, name)
        for ref_task, key in refs:
            if ref_task not in tasks:
                raise InvalidInput(f"task {name!r} reads a value of unknown task {ref_task!r} ({key})", where)
            if ref_task not in before:
                raise InvalidInput(
                    f"task {name!r} reads a value of task {ref_task!r}, which is not upstream of it: "
                    "add it to depends_on",
                    where,
                )
