"""Workflow definitions: the fold of a workflow's events and the decision to record a new version."""

from __future__ import annotations

from typing import Any

from queue_core.errors import NotFound
from queue_core.eventlog.events import Event, Recorded, WorkflowCreated, WorkflowRevised

__all__ = ["WORKFLOW_KIND", "apply_workflow", "decide_apply", "workflow_spec_of"]

WORKFLOW_KIND = "workflow"


def apply_workflow(doc: dict[str, Any] | None, rec: Recorded) -> dict[str, Any] | None:
    """Fold one workflow-definition event into the workflow's document."""
    event = rec.event
    if isinstance(event, WorkflowCreated):
        return {
            "id": rec.aggregate,
            "name": event.name,
            "version": 1,
            "created_at": rec.time,
            "updated_at": rec.time,
            "versions": [{"version": 1, "defined_at": rec.time, "spec": event.spec}],
        }
    if doc is None:
        return None
    if isinstance(event, WorkflowRevised):
        entry = {"version": event.workflow_version, "defined_at": rec.time, "spec": event.spec}
        return {**doc, "version": event.workflow_version, "updated_at": rec.time, "versions": [*doc["versions"], entry]}
    return doc


def workflow_spec_of(doc: dict[str, Any], version: int | None = None) -> dict[str, Any]:
    """The spec of one version (the latest when ``version`` is None)."""
    wanted = doc["version"] if version is None else version
    for entry in doc["versions"]:
        if entry["version"] == wanted:
            return dict(entry["spec"])
    raise NotFound(f"workflow {doc['name']} has no version {wanted}")


def decide_apply(doc: dict[str, Any] | None, spec: dict[str, Any]) -> list[Event]:
    """The events that record ``spec``: none when the latest version already says the same."""
    if doc is None:
        return [WorkflowCreated(name=spec["name"], spec=spec)]
    if workflow_spec_of(doc) == spec:
        return []
    return [WorkflowRevised(name=spec["name"], workflow_version=doc["version"] + 1, spec=spec)]
