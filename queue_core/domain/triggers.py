"""Data-aware triggers: the fold of a trigger's events and the pure decision of when it fires.

A definition or workflow with a ``trigger`` has one trigger aggregate (its id derived from the target's).
A dataset trigger is handed the matching writes the log holds past its cursor; a files trigger the files
its depot lists now. ``decide_datasets`` and ``decide_files`` say fire, note (writes seen, waiting for
the rest or for quiet), or nothing. Nothing here reads a clock, Redis, a folder or S3.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from queue_core.eventlog.events import Recorded, TriggerFired, TriggerWritesNoted
from queue_core.eventlog.positions import position_key
from queue_core.timefmt import parse_utc

__all__ = [
    "FIRE",
    "MAX_FILES_PER_FIRE",
    "NOTE",
    "TRIGGER_EVENTS",
    "FileSeen",
    "TriggerDecision",
    "Write",
    "apply_trigger",
    "decide_datasets",
    "decide_files",
    "trigger_id",
]

Doc = dict[str, Any]
FIRE, NOTE = "fire", "note"
MAX_FILES_PER_FIRE = 1000  # more new files than this fire again on the next pass, the rest of them
_IDS = uuid.UUID("0c0e4b8e-5f1d-4d57-9b1e-3f2a6c7d8e91")


def trigger_id(target_kind: str, target_id: str) -> str:
    """The trigger aggregate of a definition or workflow: one per target, the same id on every scheduler."""
    return str(uuid.uuid5(_IDS, f"{target_kind}/{target_id}"))


@dataclass(frozen=True)
class Write:
    """A ``DatasetWritten`` a dataset trigger watches: which dataset, by which run, where and when in the log."""

    dataset: str
    run: str
    position: str
    time: str

    def to_doc(self) -> Doc:
        return {"dataset": self.dataset, "run": self.run, "position": self.position, "time": self.time}


@dataclass(frozen=True)
class FileSeen:
    """A file a files trigger's depot lists: its path below the prefix and when it last changed."""

    name: str
    modified: datetime


@dataclass(frozen=True)
class TriggerDecision:
    """``kind`` fire (with ``datasets`` or ``files``) or note (``writes`` seen before it can fire)."""

    kind: str
    datasets: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    writes: tuple[Write, ...] = ()


# -- the fold -------------------------------------------------------------------------------------


def _empty(rec: Recorded, target_kind: str, target: str) -> Doc:
    return {
        "id": rec.aggregate,
        "target_kind": target_kind,
        "target": target,
        "cursor": "0-0",
        "pending": [],
        "seen_files": [],
        "fired": 0,
        "last_fire": None,
        "last_run": None,
        "version": 0,
    }


def _noted(doc: Doc, rec: Recorded, e: TriggerWritesNoted) -> Doc:
    # The newest write of each dataset is kept: an ``all`` trigger waiting a month for one dataset while
    # another is written hourly holds two writes, not seven hundred.
    newest = {w["dataset"]: w for w in doc["pending"]}
    newest.update({w["dataset"]: dict(w) for w in e.writes})
    return {**doc, "cursor": e.cursor, "pending": sorted(newest.values(), key=lambda w: position_key(w["position"]))}


def _fired(doc: Doc, rec: Recorded, e: TriggerFired) -> Doc:
    kind, run = ("workflow_run", e.workflow_run) if e.workflow_run else ("run", e.run)
    return {
        **doc,
        "cursor": e.cursor or doc["cursor"],
        "pending": [] if e.datasets else doc["pending"],
        "seen_files": sorted({*doc["seen_files"], *e.files}),
        "fired": doc["fired"] + 1,
        "last_fire": e.fired_at,
        "last_run": {"kind": kind, "id": run, "reason": e.reason, "datasets": list(e.datasets), "files": list(e.files)},
    }


_HANDLERS: dict[str, Callable[[Doc, Recorded, Any], Doc]] = {
    "TriggerWritesNoted": _noted,
    "TriggerFired": _fired,
}
TRIGGER_EVENTS = frozenset(_HANDLERS)


def apply_trigger(doc: Doc | None, rec: Recorded) -> Doc | None:
    """Fold one trigger event; ``version`` counts the trigger's events (a fire appends at it)."""
    handler = _HANDLERS.get(rec.type)
    if handler is None:
        return doc
    event = rec.event
    base = doc if doc is not None else _empty(rec, event.target_kind, event.target)  # type: ignore[attr-defined]
    return {**handler(base, rec, event), "version": base["version"] + 1}


# -- deciding -------------------------------------------------------------------------------------


def _minutes_since(earlier: str, now: datetime) -> float:
    return (now - parse_utc(earlier)).total_seconds() / 60


def decide_datasets(spec: Doc, doc: Doc | None, writes: Sequence[Write], now: datetime) -> TriggerDecision | None:
    """What a dataset trigger does at ``now`` with the matching ``writes`` past its cursor.

    ``any`` is ready with one write of a watched dataset, ``all`` once each has been written since the last
    fire. A ``debounce`` (minutes) holds a ready trigger until that long after the newest write, gathering
    the writes meanwhile into the one fire. Writes that cannot fire yet are noted, so that a scheduler
    starting later (or the other one) decides on the same ones.
    """
    watched = set(spec["datasets"])
    cursor = doc["cursor"] if doc else "0-0"
    fresh = tuple(w for w in writes if w.dataset in watched and position_key(w.position) > position_key(cursor))
    pending = [w for w in (doc["pending"] if doc else []) if w["dataset"] in watched] + [w.to_doc() for w in fresh]
    if not pending:
        return None
    written = {w["dataset"] for w in pending}
    ready = bool(written) if spec["mode"] == "any" else written >= watched
    newest = max(parse_utc(w["time"]) for w in pending)
    quiet = (now - newest).total_seconds() / 60 >= spec["debounce"]
    if ready and quiet:
        return TriggerDecision(FIRE, datasets=tuple(sorted(written)), writes=fresh)
    return TriggerDecision(NOTE, writes=fresh) if fresh else None


def decide_files(spec: Doc, doc: Doc | None, listing: Sequence[FileSeen], now: datetime) -> TriggerDecision | None:
    """What a files trigger does at ``now`` with the files its depot lists: fire for the ones never fired for.

    It waits ``minInterval`` minutes after its last fire, and ``waitAfterLastChange`` minutes after the newest
    change among the new files (a file still being written is not picked up half done).
    """
    seen = set(doc["seen_files"]) if doc else set()
    new = sorted((f for f in listing if f.name not in seen), key=lambda f: f.name)
    if not new:
        return None
    if doc and doc["last_fire"] and _minutes_since(doc["last_fire"], now) < spec["minInterval"]:
        return None
    newest = max(f.modified for f in new)
    if (now - newest).total_seconds() / 60 < spec["waitAfterLastChange"]:
        return None
    return TriggerDecision(FIRE, files=tuple(f.name for f in new[:MAX_FILES_PER_FIRE]))
