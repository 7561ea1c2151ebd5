"""The trigger use cases: which definitions and workflows are triggered by data, their state, and a fire.

A fire appends ``TriggerFired`` on the trigger at the version it was decided at, and in the same batch the
run's ``RunSubmitted`` (or the workflow run's start) and, on a run, its ``RunCauseRecorded``. The run id and
the event ids are derived from (trigger, fire number), so two schedulers deciding the same fire append it
once: the second loses on the version check (or its batch is the same one, recorded once).
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from queue_core.domain.definitions import spec_of
from queue_core.domain.schedules import stamp
from queue_core.domain.triggers import FIRE, NOTE, TriggerDecision, apply_trigger, trigger_id
from queue_core.domain.workflows import workflow_spec_of
from queue_core.errors import AlreadyExists, InvalidInput, JobledgerError, NotFound
from queue_core.eventlog.aggregates import load_state
from queue_core.eventlog.events import NewEvent, RunCauseRecorded, TriggerFired, TriggerWritesNoted
from queue_core.eventlog.positions import as_position
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import ReadModels
from queue_core.services.submissions import Submissions
from queue_core.services.workflows import WorkflowService

__all__ = ["Target", "TriggerService"]

Doc = dict[str, Any]


@dataclass(frozen=True)
class Target:
    """A definition or workflow with a trigger: ``since`` is the log position its trigger counts writes after."""

    kind: str
    id: str
    name: str
    trigger: Doc
    since: str

    @property
    def trigger_id(self) -> str:
        return trigger_id(self.kind, self.id)


def _derived(tid: str, *parts: str) -> str:
    return str(uuid.uuid5(uuid.UUID(tid), "/".join(parts)))


def _since(doc: Doc, spec_at: Any) -> str:
    """Where the target's current trigger starts counting: the first version of the unbroken line of versions
    that carry the same trigger (a later change of something else does not restart it)."""
    versions = doc["versions"]
    first = versions[-1]
    for entry in reversed(versions):
        if spec_at(entry).get("trigger") != spec_at(versions[-1]).get("trigger"):
            break
        first = entry
    return as_position(first["defined_at"], "since")


class TriggerService:
    """The trigger use cases on one store."""

    def __init__(
        self, store: EventStore, read_models: ReadModels, submissions: Submissions, workflows: WorkflowService
    ) -> None:
        self.store = store
        self.read_models = read_models
        self.submissions = submissions
        self.workflows = workflows

    def targets(self) -> list[Target]:
        """Every live definition and workflow with a trigger, by kind and name."""
        self.read_models.catch_up()
        found: list[Target] = []
        for doc in self.read_models.all("definitions").values():
            spec = spec_of(doc) if doc and not doc["deleted"] else {}
            if "trigger" in spec:
                since = _since(doc, lambda e: e["spec"])
                found.append(Target("definition", doc["id"], doc["name"], spec["trigger"], since))
        for doc in self.read_models.all("workflows").values():
            spec = workflow_spec_of(doc) if doc else {}
            if "trigger" in spec:
                since = _since(doc, lambda e: e["spec"])
                found.append(Target("workflow", doc["id"], doc["name"], spec["trigger"], since))
        return sorted(found, key=lambda t: (t.kind, t.name))

    def load(self, target: Target) -> tuple[Doc | None, int]:
        """The trigger's state as its own events fold (not a read model: a fire is decided on this)."""
        return load_state(self.store, target.trigger_id, apply_trigger)

    def record(
        self, target: Target, doc: Doc | None, version: int, decision: TriggerDecision, cursor: str, now: datetime
    ) -> None:
        """Append the decision at ``version``; ``ConcurrencyError`` when another scheduler got there first."""
        tid = target.trigger_id
        writes = tuple(w.to_doc() for w in decision.writes)
        if decision.kind == NOTE:
            noted = TriggerWritesNoted(target_kind=target.kind, target=target.id, writes=writes, cursor=cursor)
            self.store.append([NewEvent(tid, noted, _derived(tid, "note", str(version)))], {tid: version})
            return
        assert decision.kind == FIRE
        number = str((doc["fired"] if doc else 0) + 1)
        fired_at = stamp(now)
        reason = "datasets" if decision.datasets else "files"
        fired = TriggerFired(
            target_kind=target.kind,
            target=target.id,
            reason=reason,
            fired_at=fired_at,
            datasets=decision.datasets,
            files=decision.files,
            cursor=cursor if decision.datasets else "",
        )
        batch: list[NewEvent] = []
        expected: dict[str, int] = {tid: version}
        if decision.writes:  # the writes that made it ready, noted in the same batch: the log says which
            noted = TriggerWritesNoted(target_kind=target.kind, target=target.id, writes=writes, cursor=cursor)
            batch.append(NewEvent(tid, noted, _derived(tid, "note", str(version))))
        try:
            if target.kind == "workflow":
                run_id, started, more = self.workflows.start_batch(
                    target.name, None, fired_at, run_id=_derived(tid, number, "workflow-run")
                )
                fired = dataclasses.replace(fired, workflow_run=run_id)
                submitted = [
                    dataclasses.replace(n, event_id=_derived(tid, number, f"w{i}")) for i, n in enumerate(started)
                ]
            else:
                definition = self.read_models.get("definitions", target.id)
                if definition is None:
                    raise NotFound(f"no definition {target.id}")
                run_id, new, more = self.submissions.submission_of(
                    definition, logical_date=fired_at, run_id=_derived(tid, number, "run")
                )
                fired = dataclasses.replace(fired, run=run_id)
                cause = RunCauseRecorded(reason=reason, source=tid, datasets=decision.datasets, files=decision.files)
                submitted = [dataclasses.replace(n, event_id=_derived(tid, number, str(i))) for i, n in enumerate(new)]
                submitted.append(NewEvent(run_id, cause, _derived(tid, number, "cause")))
            expected.update(more)
        except JobledgerError as exc:
            if not isinstance(exc, InvalidInput | NotFound | AlreadyExists):
                raise
            fired = dataclasses.replace(fired, message=str(exc))  # recorded, so the same files do not fire again
            submitted = []
        batch.append(NewEvent(tid, fired, _derived(tid, number, "fired")))
        self.store.append(batch + submitted, expected)

    # -- reading ------------------------------------------------------------------------------

    def list_all(self) -> list[Doc]:
        """Every trigger of a live definition or workflow, with its state."""
        return [self._view(t) for t in self.targets()]

    def get(self, name: str) -> Doc:
        """The trigger of the definition or workflow named ``name``."""
        for target in self.targets():
            if target.name == name or target.id == name:
                return self._view(target)
        raise NotFound(f"no definition or workflow named {name!r} has a trigger")

    def _view(self, target: Target) -> Doc:
        doc, _ = self.load(target)
        state = doc or {"fired": 0, "last_fire": None, "last_run": None, "pending": [], "seen_files": []}
        return {
            "id": target.trigger_id,
            "target_kind": target.kind,
            "target": target.name,
            "trigger": target.trigger,
            "fired": state["fired"],
            "last_fire": state["last_fire"],
            "last_run": state["last_run"],
            "pending": sorted({w["dataset"] for w in state["pending"]}),
            "files_seen": len(state["seen_files"]),
        }
