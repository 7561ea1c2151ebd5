"""Job definitions: the fold of a definition's events and the commands that decide new ones."""

from __future__ import annotations

from typing import Any

from queue_core.errors import NotFound
from queue_core.eventlog.events import DefinitionCreated, DefinitionDeleted, DefinitionRevised, Event, Recorded

__all__ = ["apply_definition", "decide_define", "spec_of"]

DEFINITION_KIND = "definition"


def apply_definition(doc: dict[str, Any] | None, rec: Recorded) -> dict[str, Any] | None:
    """Fold one definition event into the definition's document."""
    event = rec.event
    if isinstance(event, DefinitionCreated):
        return {
            "id": rec.aggregate,
            "name": event.name,
            "version": 1,
            "deleted": False,
            "created_at": rec.time,
            "updated_at": rec.time,
            "versions": [{"version": 1, "defined_at": rec.time, "spec": event.spec}],
        }
    if doc is None:
        return None
    if isinstance(event, DefinitionRevised):
        versions = [
            *doc["versions"],
            {"version": event.definition_version, "defined_at": rec.time, "spec": event.spec},
        ]
        return {**doc, "version": event.definition_version, "updated_at": rec.time, "versions": versions}
    if isinstance(event, DefinitionDeleted):
        return {**doc, "deleted": True, "updated_at": rec.time}
    return doc


def spec_of(doc: dict[str, Any], version: int | None = None) -> dict[str, Any]:
    """The spec of one version (the latest when ``version`` is None)."""
    wanted = doc["version"] if version is None else version
    for entry in doc["versions"]:
        if entry["version"] == wanted:
            return dict(entry["spec"])
    raise NotFound(f"definition {doc['name']} has no version {wanted}")


def decide_define(doc: dict[str, Any] | None, spec: dict[str, Any]) -> list[Event]:
    """The events that record ``spec`` on a live definition: none when its content is unchanged."""
    if doc is None:
        return [DefinitionCreated(name=spec["name"], spec=spec)]
    if spec_of(doc) == spec:
        return []
    return [DefinitionRevised(name=spec["name"], definition_version=doc["version"] + 1, spec=spec)]


def deleted_event(doc: dict[str, Any]) -> DefinitionDeleted:
    return DefinitionDeleted(name=doc["name"])
