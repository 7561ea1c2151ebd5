"""The projections: which events each read model folds, with which pure function, under which key."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from queue_core.domain.backfills import BACKFILL_EVENTS, apply_backfill
from queue_core.domain.clusters import apply_cluster
from queue_core.domain.definitions import apply_definition
from queue_core.domain.depots import apply_depot
from queue_core.domain.gate import is_gated
from queue_core.domain.lineage import apply_dataset
from queue_core.domain.names import apply_name, name_key
from queue_core.domain.notifications import NOTIFICATION_EVENTS, apply_notification, is_open
from queue_core.domain.pools import POOL_EVENTS, apply_pool
from queue_core.domain.runs import TERMINAL, apply_run
from queue_core.domain.schedules import ACTIVE, SCHEDULE_EVENTS, apply_schedule
from queue_core.domain.triggers import TRIGGER_EVENTS, apply_trigger
from queue_core.domain.workflow_runs import WORKFLOW_RUN_EVENTS, apply_workflow_run, is_going
from queue_core.domain.workflows import apply_workflow
from queue_core.eventlog.events import Recorded
from queue_core.readmodels.fold_version import fold_digest

__all__ = [
    "FOLD_VERSION",
    "PAUSE_ON_FAILURE",
    "PROJECTIONS",
    "QUARANTINE",
    "Projection",
    "fold",
    "quarantine_key",
    "routes",
]

Doc = dict[str, Any]


@dataclass(frozen=True)
class Projection:
    """One read model: a pure ``apply(doc, event) -> doc`` per entity, and the indexes of a doc."""

    model: str
    types: frozenset[str]
    apply: Callable[[Doc | None, Recorded], Doc | None]
    entity: Callable[[Recorded], str]
    indexes: Callable[[Doc], dict[str, float]]


def _by_aggregate(rec: Recorded) -> str:
    return rec.aggregate


def _by_name(rec: Recorded) -> str:
    event = rec.event
    return name_key(event.kind, event.name)  # type: ignore[attr-defined]


def _by_dataset(rec: Recorded) -> str:
    return rec.event.dataset  # type: ignore[attr-defined]


def _no_indexes(doc: Doc) -> dict[str, float]:
    return {}


def _run_indexes(doc: Doc) -> dict[str, float]:
    order = doc["order"]
    indexes = {"all": order, f"status:{doc['status']}": order, f"definition:{doc['definition']}": order}
    if doc["status"] not in TERMINAL and is_gated(doc["job"]):
        indexes["gated"] = order  # what the gate looks at: runs holding or waiting for slots
    for tag in doc["tags"]:
        indexes[f"tag:{tag}"] = order
    return indexes


def _workflow_run_indexes(doc: Doc) -> dict[str, float]:
    order = doc["order"]
    indexes = {"all": order, f"status:{doc['status']}": order, f"workflow:{doc['workflow']}": order}
    if is_going(doc):
        indexes["active"] = order  # what the dispatcher's upkeep looks at again
    if doc["prerun"] and doc["scratch"]["status"] != "removed":
        indexes["prerun:scratch"] = order  # a pre-run whose scratch outputs the leader removes in time
    return indexes


def _notification_indexes(doc: Doc) -> dict[str, float]:
    order = doc["order"]
    indexes = {"all": order, f"subject:{doc['subject']}": order, f"status:{doc['status']}": order}
    if is_open(doc):
        indexes["open"] = order  # what the deliverers look at
    return indexes


PAUSE_ON_FAILURE = "pause_on_failure"  # the index of the active schedules that pause when their run fails


def _schedule_indexes(doc: Doc) -> dict[str, float]:
    # The schedules a failed run may pause: what the scheduler reads when failures land, not every schedule.
    return {PAUSE_ON_FAILURE: 0.0} if doc["pause_on_failure"] and doc["status"] == ACTIVE else {}


def _no_fold(doc: Doc | None, rec: Recorded) -> Doc | None:
    return doc


def _quarantine_indexes(doc: Doc) -> dict[str, float]:
    return {"all": 0.0}


QUARANTINE = "quarantine"  # the entities whose fold raised: MODEL:ENTITY -> where and why (filled by ``fold``)
# Events that still apply to a quarantined entity, so that an operator can end it: cancelling it.
_RELEASING = frozenset({"RunCancelled", "WorkflowRunCancelled"})


def quarantine_key(model: str, entity: str) -> str:
    """The quarantine entry of one entity of one read model."""
    return f"{model}:{entity}"


PROJECTIONS: tuple[Projection, ...] = (
    Projection(
        "definitions",
        frozenset({"DefinitionCreated", "DefinitionRevised", "DefinitionDeleted"}),
        apply_definition,
        _by_aggregate,
        _no_indexes,
    ),
    Projection("clusters", frozenset({"ClusterRegistered"}), apply_cluster, _by_aggregate, _no_indexes),
    Projection("pools", POOL_EVENTS, apply_pool, _by_aggregate, _no_indexes),
    Projection("depots", frozenset({"DepotAdded"}), apply_depot, _by_aggregate, _no_indexes),
    Projection("datasets", frozenset({"DatasetWritten"}), apply_dataset, _by_dataset, _no_indexes),
    Projection("names", frozenset({"NameClaimed", "NameReleased"}), apply_name, _by_name, _no_indexes),
    Projection(
        "runs",
        frozenset(
            {
                "RunSubmitted",
                "RunArrayExpanded",
                "RunArrayChildrenEnded",
                "RunForEachCarried",
                "RunQueued",
                "RunWaiting",
                "RunStarted",
                "RunAttemptFailed",
                "RunRetryScheduled",
                "RunSucceeded",
                "RunValuesPublished",
                "RunFailed",
                "RunCancelled",
                "RunCauseRecorded",
            }
        ),
        apply_run,
        _by_aggregate,
        _run_indexes,
    ),
    Projection(
        "workflows", frozenset({"WorkflowCreated", "WorkflowRevised"}), apply_workflow, _by_aggregate, _no_indexes
    ),
    Projection("workflow_runs", WORKFLOW_RUN_EVENTS, apply_workflow_run, _by_aggregate, _workflow_run_indexes),
    Projection("schedules", SCHEDULE_EVENTS, apply_schedule, _by_aggregate, _schedule_indexes),
    Projection("triggers", TRIGGER_EVENTS, apply_trigger, _by_aggregate, _no_indexes),
    Projection("backfills", BACKFILL_EVENTS, apply_backfill, _by_aggregate, _no_indexes),
    Projection("notifications", NOTIFICATION_EVENTS, apply_notification, _by_aggregate, _notification_indexes),
    Projection(QUARANTINE, frozenset(), _no_fold, _by_aggregate, _quarantine_indexes),
)


def routes(projections: Iterable[Projection] = PROJECTIONS) -> dict[str, list[Projection]]:
    """Event type -> the projections that fold it."""
    table: dict[str, list[Projection]] = {}
    for projection in projections:
        for type_name in projection.types:
            table.setdefault(type_name, []).append(projection)
    return table


# Event type -> (model, entity key function or None for "the aggregate", apply), flattened for the fold.
_ROUTES: dict[
    str, tuple[tuple[str, Callable[[Recorded], str] | None, Callable[[Doc | None, Recorded], Doc | None]], ...]
] = {
    type_name: tuple((p.model, None if p.entity is _by_aggregate else p.entity, p.apply) for p in found)
    for type_name, found in routes().items()
}


def fold(state: dict[str, dict[str, Doc | None]], events: Iterable[Recorded]) -> dict[str, dict[str, Doc | None]]:
    """Fold ``events`` into ``state`` (model -> entity -> doc); a removed doc is kept as None.

    An event whose fold raises quarantines its entity: the document stays as it was before that event,
    later events of the entity are not folded (but a cancel, which may still end it), and
    ``state[QUARANTINE]`` says where and why. Everything else folds on: one event stops no process.
    The same log always quarantines the same entities, so a rebuild agrees with the live models.
    """
    held = state.get(QUARANTINE)
    if held is None:
        held = state[QUARANTINE] = {}
    for rec in events:
        for model, entity, apply in _ROUTES.get(rec.type, ()):
            docs = state.get(model)
            if docs is None:
                docs = state[model] = {}
            key = rec.aggregate if entity is None else entity(rec)
            quarantined = held.get(quarantine_key(model, key)) if held else None
            if quarantined is not None and rec.type not in _RELEASING:
                continue
            try:
                docs[key] = apply(docs.get(key), rec)
            except Exception as exc:  # any error of one entity's fold is that entity's alone
                if quarantined is None:
                    held[quarantine_key(model, key)] = _quarantined(model, key, rec, exc)
    return state


def _quarantined(model: str, entity: str, rec: Recorded, exc: Exception) -> Doc:
    return {
        "model": model,
        "entity": entity,
        "aggregate": rec.aggregate,
        "position": rec.position,
        "type": rec.type,
        "error": f"{type(exc).__name__}: {exc}"[:300],
    }


# Read models folded by other code (an older or newer jobledger) are rebuilt rather than trusted.
FOLD_VERSION = fold_digest(PROJECTIONS, also=(routes, fold))
