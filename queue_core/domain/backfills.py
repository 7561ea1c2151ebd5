"""Backfills: the fold of a backfill's events, and the pure rules of which ticks it runs and when.

A backfill runs one run per tick of a schedule in a past (or future) range, with the tick as the run's
logical date. ``plan_ticks`` chooses the ticks (those with a run are left alone unless reprocessed);
``release`` says which ticks go next, at most ``max_active`` runs at once. Nothing here reads a clock or Redis.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from queue_core.eventlog.events import (
    BackfillCancelled,
    BackfillFinished,
    BackfillRunSubmitted,
    BackfillStarted,
    Recorded,
)

__all__ = [
    "BACKFILL_EVENTS",
    "CANCELLED",
    "FINISHED",
    "MAX_BACKFILL_TICKS",
    "REPROCESS",
    "RUNNING",
    "apply_backfill",
    "outcome",
    "plan_ticks",
    "release",
]

Doc = dict[str, Any]
RUNNING, FINISHED, CANCELLED = "RUNNING", "FINISHED", "CANCELLED"
REPROCESS = ("none", "failed", "all")
MAX_BACKFILL_TICKS = 10_000
SUCCEEDED = "SUCCEEDED"
ENDED = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
_NOT_SUCCEEDED = frozenset({"FAILED", "CANCELLED"})


def plan_ticks(
    ticks: Sequence[str], existing: Mapping[str, str | None], reprocess: str, backwards: bool
) -> tuple[list[str], list[str]]:
    """(the ticks to run, in the order they run; the ticks left alone) for a range's ``ticks``, oldest first.

    ``existing`` maps a tick that already has a run to that run's status (None when unknown). ``none``
    leaves every such tick alone; ``failed`` runs again the ticks whose run ended without succeeding (failed
    or cancelled); ``all`` runs every tick. ``backwards`` runs the newest first.
    """
    run, left = [], []
    for tick in ticks:
        if tick not in existing or reprocess == "all" or (reprocess == "failed" and existing[tick] in _NOT_SUCCEEDED):
            run.append(tick)
        else:
            left.append(tick)
    return (run[::-1] if backwards else run), left


def release(doc: Doc, active: int) -> list[str]:
    """The ticks to submit now, ``active`` of the backfill's runs not having ended: up to ``max_active`` at once."""
    if doc["status"] != RUNNING:
        return []
    done = len(doc["runs"])
    room = max(0, doc["max_active"] - active)
    return list(doc["ticks"][done : done + room])


def outcome(doc: Doc, statuses: Sequence[str | None]) -> tuple[int, int] | None:
    """(succeeded, not succeeded) once every tick has been submitted and every run has ended; else None."""
    if doc["status"] != RUNNING or len(doc["runs"]) < len(doc["ticks"]):
        return None
    if any(s not in ENDED for s, r in zip(statuses, doc["runs"], strict=True) if r["run"]):
        return None
    succeeded = sum(1 for s in statuses if s == SUCCEEDED)
    return succeeded, len(doc["runs"]) - succeeded


# -- the fold -------------------------------------------------------------------------------------


def _started(doc: Doc | None, rec: Recorded, e: BackfillStarted) -> Doc:
    return {
        "id": rec.aggregate,
        "schedule": e.schedule,
        "schedule_name": e.schedule_name,
        "start": e.start,
        "end": e.end,
        "reprocess": e.reprocess,
        "max_active": e.max_active,
        "backwards": e.backwards,
        "ticks": list(e.ticks),
        "skipped": e.skipped,
        "runs": [],
        "status": RUNNING,
        "succeeded": None,
        "failed": None,
        "created_at": rec.time,
        "ended_at": None,
        "version": 0,
    }


def _submitted(doc: Doc, rec: Recorded, e: BackfillRunSubmitted) -> Doc:
    kind, run = ("workflow_run", e.workflow_run) if e.workflow_run else ("run", e.run)
    entry = {"tick": e.tick, "logical_date": e.logical_date, "kind": kind, "run": run, "message": e.message or None}
    return {**doc, "runs": [*doc["runs"], entry]}


def _cancelled(doc: Doc, rec: Recorded, e: BackfillCancelled) -> Doc:
    return {**doc, "status": CANCELLED, "ended_at": rec.time}


def _finished(doc: Doc, rec: Recorded, e: BackfillFinished) -> Doc:
    return {**doc, "status": FINISHED, "succeeded": e.succeeded, "failed": e.failed, "ended_at": rec.time}


_HANDLERS: dict[str, Callable[[Any, Recorded, Any], Doc]] = {
    "BackfillStarted": _started,
    "BackfillRunSubmitted": _submitted,
    "BackfillCancelled": _cancelled,
    "BackfillFinished": _finished,
}
BACKFILL_EVENTS = frozenset(_HANDLERS)


def apply_backfill(doc: Doc | None, rec: Recorded) -> Doc | None:
    """Fold one backfill event; ``version`` counts the backfill's events (the driver appends at it)."""
    handler = _HANDLERS.get(rec.type)
    if handler is None or (doc is None and handler is not _started):
        return doc
    folded = handler(doc, rec, rec.event)
    return {**folded, "version": folded["version"] + 1, "updated_at": rec.time}
