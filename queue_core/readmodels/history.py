"""A thing's history read from its events: what changed between two definition versions, where a run's time went."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from queue_core.eventlog.events import Recorded
from queue_core.timefmt import parse_utc

__all__ = ["Change", "Phase", "diff_specs", "timeline"]


@dataclass(frozen=True)
class Change:
    """One field that differs between two versions: ``added``, ``removed`` or ``changed``."""

    kind: str
    field: str
    old: Any = None
    new: Any = None


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def diff_specs(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """The fields added, removed and changed from ``old`` to ``new``, by dotted path, in path order."""
    left, right = _flatten(old), _flatten(new)
    changes = []
    for field in sorted(left.keys() | right.keys()):
        if field not in left:
            changes.append(Change("added", field, new=right[field]))
        elif field not in right:
            changes.append(Change("removed", field, old=left[field]))
        elif left[field] != right[field]:
            changes.append(Change("changed", field, left[field], right[field]))
    return changes


@dataclass(frozen=True)
class Phase:
    """A stretch of a run's life in one state: from one event's time to the next's (or to now)."""

    phase: str
    attempt: int
    started_at: str
    ended_at: str | None
    seconds: float


_STARTS = {
    "RunSubmitted": "recently submitted",
    "RunWaiting": "waiting for a slot",
    "RunQueued": "in queue",
    "RunRetryScheduled": "waiting to retry",
    "RunStarted": "running",
}
_ENDS = {"RunSucceeded", "RunFailed", "RunCancelled"}


def _moment(stamp: str) -> datetime:
    return parse_utc(stamp)


WAITING_PHASE = "waiting for a reference or upstream task"


def waiting_phase(workflow_events: list[Recorded], task: str, submitted_at: str) -> Phase | None:
    """For a workflow task's run: from the start of its round (the workflow run's start, or the rerun
    that reset the task) to its submission, the time it waited for references and upstream tasks."""
    since: str | None = None
    for rec in workflow_events:
        if rec.type == "WorkflowRunStarted" or (rec.type == "TaskRerunRequested" and task in rec.event.tasks):  # type: ignore[attr-defined]
            since = rec.time
        if rec.type == "TaskSubmitted" and rec.event.task == task and rec.time >= submitted_at:  # type: ignore[attr-defined]
            break
    if since is None:
        return None
    seconds = max(0.0, (_moment(submitted_at) - _moment(since)).total_seconds())
    return Phase(WAITING_PHASE, 1, since, submitted_at, seconds)


def timeline(events: list[Recorded], now: datetime | None = None) -> list[Phase]:
    """Split a run's life into phases from its events; an unfinished run's last phase runs to ``now``."""
    now = now or datetime.now(UTC)
    phases: list[Phase] = []
    current: tuple[str, int, str] | None = None
    attempt = 1

    def close(at: str | None) -> None:
        if current is not None:
            phase, number, since = current
            end = _moment(at) if at else now
            phases.append(Phase(phase, number, since, at, max(0.0, (end - _moment(since)).total_seconds())))

    for rec in events:
        attempt = getattr(rec.event, "attempt", attempt) or attempt
        if rec.type in _STARTS:
            close(rec.time)
            current = (_STARTS[rec.type], attempt, rec.time)
        elif rec.type == "RunAttemptFailed":
            continue  # the next event (a retry or the failure) closes the running phase
        elif rec.type in _ENDS:
            close(rec.time)
            current = None
    close(None)
    return phases
