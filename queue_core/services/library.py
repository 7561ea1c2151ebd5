"""The built-in library: list and show the built-ins, and "use the program" (a workflow running one, scheduled)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from queue_core.cron import parse_cron
from queue_core.errors import AlreadyExists, InvalidInput, NotFound
from queue_core.services.schedules import ScheduleRequest, ScheduleService
from queue_core.services.workflows import AppliedWorkflow, WorkflowService
from queue_core.specs.builtins import BUILTIN, find_builtin, library

__all__ = ["LibraryService", "UsedBuiltin"]


@dataclass(frozen=True)
class UsedBuiltin:
    """What ``use`` made: the workflow (one task running the built-in) and its schedule, if one was asked for."""

    workflow: AppliedWorkflow
    task: str
    builtin: str
    schedule: dict[str, Any] | None


class LibraryService:
    """The built-ins shipped with jobledger, and workflows made from them."""

    def __init__(self, workflows: WorkflowService, schedules: ScheduleService) -> None:
        self.workflows = workflows
        self.schedules = schedules

    def list(self) -> list[dict[str, Any]]:
        return library()

    def show(self, ref: str) -> dict[str, Any]:
        """One built-in (``NAME``: its latest version; ``NAME@VERSION``), with its parameters and other versions."""
        builtin = find_builtin(ref, "name")
        doc = builtin.describe()
        doc["versions"] = [b["version"] for b in library() if b["name"] == builtin.name]
        return doc

    def use(
        self,
        ref: str,
        workflow: str,
        params: Mapping[str, Any],
        cron: str | None = None,
        timezone: str = "UTC",
        cluster: str | None = None,
    ) -> UsedBuiltin:
        """Create (or revise) workflow ``workflow`` with one task running the built-in, and a schedule of the
        same name when ``cron`` is given; everything is checked before anything is appended."""
        builtin = find_builtin(ref, "name")
        if cron is not None:
            parse_cron(cron, timezone)
            try:
                self.schedules.get(workflow, history=0)
            except NotFound:
                pass
            else:
                raise AlreadyExists(f"schedule {workflow!r} already exists")
        task: dict[str, Any] = {"job": {"type": BUILTIN, "builtin": builtin.ref, "params": dict(params)}}
        if cluster is not None:
            task["cluster"] = cluster
        prefix = f"tasks.{builtin.name}.job."
        try:
            applied = self.workflows.apply({"name": workflow, "tasks": {builtin.name: task}})
        except InvalidInput as exc:  # a parameter: named as the caller gave it
            field = exc.field or ""
            if field.startswith(prefix):
                raise InvalidInput(exc.detail, field[len(prefix) :], remedy=exc.remedy, subject=exc.subject) from None
            raise
        schedule = None
        if cron is not None:
            request = ScheduleRequest(workflow, workflow=workflow, cron=cron, timezone=timezone)
            schedule = self.schedules.create(request)
        return UsedBuiltin(applied, builtin.name, builtin.ref, schedule)
