"""Backfills: the fold of a backfill's events, and the pure rules of which ticks it runs and when.

A backfill runs one run per tick of a schedule in a past (or future) range, with the tick as the run's
logical date. ``plan_ticks`` chooses the ticks (those with a run are left alone unless reprocessed);
``release`` says which ticks go next, at most ``max_active`` runs at once. Nothing here reads a clock or Redis.

A backfill holds up to ``MAX_BACKFILL_TICKS`` ticks, so its fold does a constant amount of work per event:
the ticks are the started event's tuple, shared and never copied; a submission moves a cursor (ticks are
submitted in their order) and a refused one adds its message. Which run a tick got is derived from (backfill,
tick), as the service derived it when it submitted (``tick_run``), so no list of runs grows in the fold.
"""

from __future__ import annotations

import uuid
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
    "derived_id",
    "entries",
    "outcome",
    "plan_ticks",
    "release",
    "tick_run",
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


def derived_id(backfill_id: str, *parts: str) -> str:
    """An id derived from the backfill's and ``parts``: the same on every scheduler, so a retried append is one."""
    return str(uuid.uuid5(uuid.UUID(backfill_id), "/".join(parts)))


def tick_run(backfill_id: str, tick: str, kind: str) -> str:
    """The run (``kind`` run) or workflow run (``kind`` workflow_run) a backfill submits for ``tick``.

    Recorded in each ``BackfillRunSubmitted`` too; readers derive it (``entries``), so the fold keeps no list.
    """
    return derived_id(backfill_id, tick, "workflow-run" if kind == "workflow_run" else "run")


def entries(doc: Doc) -> list[Doc]:
    """Each submitted tick in the order submitted: its run (None when the submission was refused, with why)."""
    refused = doc["refused"]
    found = []
    for tick in doc["ticks"][: doc["submitted"]]:
        message = refused.get(tick)  # only refused ticks are in it
        run = None if message is not None else tick_run(doc["id"], tick, doc["kind"])
        found.append({"tick": tick, "kind": doc["kind"], "run": run, "message": message})
    return found


def release(doc: Doc, active: int) -> list[str]:
    """The ticks to submit now, ``active`` of the backfill's runs not having ended: up to ``max_active`` at once."""
    if doc["status"] != RUNNING:
        return []
    done = doc["submitted"]
    room = max(0, doc["max_active"] - active)
    return list(doc["ticks"][done : done + room])


def outcome(doc: Doc, statuses: Sequence[str | None]) -> tuple[int, int] | None:
    """(succeeded, not succeeded) once every tick has been submitted and every run has ended; else None.

    ``statuses``: of each of ``entries(doc)``, None for a refused one.
    """
    if doc["status"] != RUNNING or doc["submitted"] < len(doc["ticks"]):
        return None
    if any(s not in ENDED for s, e in zip(statuses, entries(doc), strict=True) if e["run"]):
        return None
    succeeded = sum(1 for s in statuses if s == SUCCEEDED)
    return succeeded, doc["submitted"] - succeeded


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
        "ticks": list(e.ticks),  # made once, from the event; every later state shares it, never copied
        "skipped": e.skipped,
        "submitted": 0,  # the ticks before this one have been submitted (in their order)
        "kind": None,  # run or workflow_run, from the first submission
        "refused": {},  # tick -> why its submission was refused (a deleted definition, ...): few or none
        "status": RUNNING,
        "succeeded": None,
        "failed": None,
        "created_at": rec.time,
        "ended_at": None,
        "version": 0,
    }


def _submitted(doc: Doc, rec: Recorded, e: BackfillRunSubmitted) -> Doc:
    # A constant amount of work: the doc's few keys copied, the ticks shared, the refusals only copied when
    # this one is refused (a refusal comes from a definition or workflow gone: rare, and then each tick's).
    kind = doc["kind"] or ("workflow_run" if e.workflow_run else "run" if e.run else None)
    refused = {**doc["refused"], e.tick: e.message} if e.message else doc["refused"]
    return {**doc, "submitted": doc["submitted"] + 1, "kind": kind, "refused": refused}


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
