"""Schedules: the fold of a schedule's events and the pure decision of what each due tick becomes.

A schedule's ticks come from its cron expression in its time zone (``cron.py``), or are the one
``at`` time. The timer hands ``plan`` the schedule, the time and whether its previous run is still
active; ``plan`` says, tick by tick, fire, skip, queue, record as missed, or end. Nothing here reads
a clock, Redis or the log.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from queue_core.cron import CronExpression, parse_cron, zone
from queue_core.eventlog.events import (
    Recorded,
    ScheduleCreated,
    ScheduleDeleted,
    ScheduleEnded,
    ScheduleFired,
    SchedulePaused,
    ScheduleResumed,
    ScheduleTickQueued,
    ScheduleTickSkipped,
    ScheduleTicksMissed,
)
from queue_core.settings import DEFAULT_SCHEDULE_ON_TIME_SECONDS
from queue_core.specs.logical_dates import normalize_logical_date
from queue_core.timefmt import format_utc, parse_time, parse_utc

__all__ = [
    "ACTIVE",
    "CATCHUP_POLICIES",
    "DELETED",
    "ENDED",
    "OVERLAP_POLICIES",
    "PAUSED",
    "SCHEDULE_EVENTS",
    "SCHEDULE_KIND",
    "OneTime",
    "Step",
    "apply_schedule",
    "expand_args",
    "fire_time",
    "instant",
    "logical_date_of",
    "next_tick",
    "plan",
    "stamp",
    "timing_of",
]

SCHEDULE_KIND = "schedule"
ACTIVE, PAUSED, ENDED, DELETED = "ACTIVE", "PAUSED", "ENDED", "DELETED"
CATCHUP_POLICIES = ("all", "latest", "none")
OVERLAP_POLICIES = ("skip", "allow", "queue", "replace")
# A tick seen within this many seconds of its time is on time; an older one was missed (the
# scheduler was down or stopped) and the catch-up policy decides whether it fires.
# A pass looks at no more than this many ticks of one schedule (a long outage takes several passes),
# and one ``ScheduleTicksMissed`` event lists no more than this many.
MAX_TICKS_PER_PASS = 1000
MAX_TICKS_PER_EVENT = 500
FIRE, SKIP, QUEUE, MISS, END = "fire", "skip", "queue", "miss", "end"
_ARG_VARIABLE = re.compile(r"\$\{logical_date(?::([^}]*))?\}")

Doc = dict[str, Any]


# -- instants on the log: UTC, to the second, fixed width (so the strings sort as the times) ------


def stamp(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` for an aware time (sub-second precision is dropped)."""
    return format_utc(moment, "seconds")


def instant(text: str) -> datetime:
    """The aware UTC time of a stamp (or of any ISO 8601 time with an offset)."""
    return parse_utc(text)


# -- timing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OneTime:
    """The single tick of a one-time (``at``) schedule, with the same interface as a cron expression."""

    at: datetime
    zone: Any

    def next_after(self, after: datetime) -> datetime | None:
        return self.at if self.at > after else None

    def ticks(self, after: datetime, until: datetime, limit: int) -> list[datetime]:
        return [self.at] if after < self.at <= until and limit > 0 else []


def fire_time(doc: Doc, tick: datetime) -> datetime:
    """When the tick fires: the tick plus the schedule's jitter offset for it (the same offset every time,
    derived from a hash of the schedule and the tick, from 0 up to ``jitter`` minutes, to the second)."""
    jitter = doc["jitter"]
    if not jitter:
        return tick
    digest = hashlib.sha256(f"{doc['id']}/{stamp(tick)}".encode()).digest()
    return tick + timedelta(seconds=int.from_bytes(digest[:8], "big") % (int(jitter * 60) + 1))


@lru_cache(maxsize=4096)
def _cron(text: str, timezone: str) -> CronExpression:
    return parse_cron(text, timezone)


def timing_of(doc: Doc) -> CronExpression | OneTime:
    """The ticks of a schedule document (or of a ``ScheduleCreated``'s fields)."""
    if doc.get("cron"):
        return _cron(doc["cron"], doc["timezone"])
    return OneTime(instant(doc["at"]), zone(doc["timezone"]))


def logical_date_of(tick: datetime, timing: CronExpression | OneTime) -> str:
    """The tick in the schedule's time zone, ISO 8601 with its offset (``Z`` for UTC)."""
    return normalize_logical_date(tick.astimezone(timing.zone))


def expand_args(template: str, logical_date: str) -> str:
    """``${logical_date}`` becomes the ISO logical date, ``${logical_date:%Y%m%d}`` that strftime of it."""
    moment = parse_time(logical_date)  # in the logical date's own offset: strftime shows its local time

    def replace(match: re.Match[str]) -> str:
        fmt = match.group(1)
        return logical_date if fmt is None else moment.strftime(fmt)

    return _ARG_VARIABLE.sub(replace, template)


# -- the fold -------------------------------------------------------------------------------------


def _later(a: str, b: str) -> str:
    return max(a, b)  # fixed-width UTC stamps sort as the instants they stand for


def _created(doc: Doc | None, rec: Recorded, e: ScheduleCreated) -> Doc:
    return {
        "id": rec.aggregate,
        "name": e.name,
        "target_kind": e.target_kind,
        "target": e.target,
        "cron": e.cron,
        "at": e.at,
        "timezone": e.timezone,
        "end": e.end,
        "catchup": e.catchup,
        "overlap": e.overlap,
        "args": e.args,
        "cluster": e.cluster,
        "jitter": e.jitter,
        "pause_on_failure": e.pause_on_failure,
        "pause_note": None,
        "paused_for": None,  # the failed run the schedule last paused itself for
        "tags": list(e.tags),
        "notifications": e.notifications,
        "status": ACTIVE,
        "ended_reason": None,
        "created_at": rec.time,
        "updated_at": rec.time,
        "start": e.start,
        "cursor": e.start,
        "queued": [],
        "last_run": None,
        "fired": 0,
        "skipped": 0,
        "missed": 0,
        "version": 0,
    }


def _paused(doc: Doc, rec: Recorded, e: SchedulePaused) -> Doc:
    return {**doc, "status": PAUSED, "pause_note": e.note or None, "paused_for": e.run or doc["paused_for"]}


def _resumed(doc: Doc, rec: Recorded, e: ScheduleResumed) -> Doc:
    return {**doc, "status": ACTIVE, "cursor": _later(doc["cursor"], e.start), "pause_note": None}


def _deleted(doc: Doc, rec: Recorded, e: ScheduleDeleted) -> Doc:
    return {**doc, "status": DELETED, "queued": []}


def _ended(doc: Doc, rec: Recorded, e: ScheduleEnded) -> Doc:
    return {**doc, "status": ENDED, "ended_reason": e.reason}


def _fired(doc: Doc, rec: Recorded, e: ScheduleFired) -> Doc:
    kind, run = ("workflow_run", e.workflow_run) if e.workflow_run else ("run", e.run)
    return {
        **doc,
        # A manual fire stands outside the cadence: the clock's ticks before it are still to be handled.
        "cursor": doc["cursor"] if e.manual else _later(doc["cursor"], e.tick),
        "queued": [q for q in doc["queued"] if q["tick"] != e.tick],
        "last_run": {"kind": kind, "id": run, "tick": e.tick},
        "fired": doc["fired"] + 1,
    }


def _skipped(doc: Doc, rec: Recorded, e: ScheduleTickSkipped) -> Doc:
    return {**doc, "cursor": _later(doc["cursor"], e.tick), "skipped": doc["skipped"] + 1}


def _missed(doc: Doc, rec: Recorded, e: ScheduleTicksMissed) -> Doc:
    return {**doc, "cursor": _later(doc["cursor"], max(e.ticks)), "missed": doc["missed"] + len(e.ticks)}


def _queued(doc: Doc, rec: Recorded, e: ScheduleTickQueued) -> Doc:
    waiting = {"tick": e.tick, "logical_date": e.logical_date, "caught_up": e.caught_up}
    return {**doc, "cursor": _later(doc["cursor"], e.tick), "queued": [*doc["queued"], waiting]}


_HANDLERS: dict[str, Callable[[Any, Recorded, Any], Doc]] = {
    "ScheduleCreated": _created,
    "SchedulePaused": _paused,
    "ScheduleResumed": _resumed,
    "ScheduleDeleted": _deleted,
    "ScheduleEnded": _ended,
    "ScheduleFired": _fired,
    "ScheduleTickSkipped": _skipped,
    "ScheduleTicksMissed": _missed,
    "ScheduleTickQueued": _queued,
}
SCHEDULE_EVENTS = frozenset(_HANDLERS)


def apply_schedule(doc: Doc | None, rec: Recorded) -> Doc | None:
    """Fold one schedule event; ``version`` counts the schedule's events (the timer appends at it)."""
    handler = _HANDLERS.get(rec.type)
    if handler is None or (doc is None and handler is not _created):
        return doc
    folded = handler(doc, rec, rec.event)
    return {**folded, "version": folded["version"] + 1, "updated_at": rec.time}


# -- deciding what the due ticks become -----------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One decision, appended as one batch: ``kind`` is fire, skip, queue, miss or end."""

    kind: str
    ticks: tuple[datetime, ...] = ()
    caught_up: bool = False
    replace: bool = False  # fire after cancelling the active run
    reason: str = ""  # why the schedule ended

    @property
    def tick(self) -> datetime:
        return self.ticks[0]


def plan(
    doc: Doc,
    timing: CronExpression | OneTime,
    now: datetime,
    active: bool,
    on_time: float = DEFAULT_SCHEDULE_ON_TIME_SECONDS,
) -> list[Step]:
    """What the schedule's due ticks become at ``now``, given whether its previous run is still active.

    - A queued tick fires first once the previous run has ended (one at a time).
    - Ticks up to ``now`` (and ``end``) after the cursor are due. One older than ``on_time``
      seconds was missed: ``none`` records it missed, ``latest`` fires only the newest due tick (the
      one on time, if any) and records the others, ``all`` fires them all, in order: one at a time
      (they queue, and a tick on time queues behind them), unless the overlap policy is ``allow``.
    - A tick arriving while the previous run is active: ``skip`` skips it, ``allow`` fires it,
      ``queue`` queues it, ``replace`` cancels the previous run and fires it.
    - When no tick is left (the ``at`` tick handled, the next one past ``end``) the schedule ends.
    """
    if doc["status"] != ACTIVE:
        return []
    steps: list[Step] = []
    queue = [(instant(q["tick"]), bool(q["caught_up"])) for q in doc["queued"]]
    if queue and not active:
        tick, caught_up = queue.pop(0)
        steps.append(Step(FIRE, (tick,), caught_up=caught_up))
        active = True
    cursor = instant(doc["cursor"])
    end = instant(doc["end"]) if doc.get("end") else None
    until = min(now, end) if end else now
    due = timing.ticks(cursor, until, MAX_TICKS_PER_PASS + 1)
    more = len(due) > MAX_TICKS_PER_PASS
    due = due[:MAX_TICKS_PER_PASS]
    if doc["jitter"]:
        # A tick whose jittered time is still ahead waits, and so do the ticks after it (they fire in order).
        waiting = next((i for i, t in enumerate(due) if fire_time(doc, t) > now), None)
        if waiting is not None:
            due, more = due[:waiting], True
    missed = [t for t in due if (now - fire_time(doc, t)).total_seconds() > on_time]
    arriving = [(t, False) for t in due[len(missed) :]]
    if missed:
        catchup = doc["catchup"]
        if catchup == "all":
            left, caught = [], missed
        elif catchup == "latest" and not more and not arriving:
            # The newest missed tick stands for the rest; with a tick on time in this pass (or more to
            # come in a later one) the newest is that one, and every missed tick is only recorded.
            left, caught = missed[:-1], missed[-1:]
        else:
            left, caught = missed, []
        for start in range(0, len(left), MAX_TICKS_PER_EVENT):
            steps.append(Step(MISS, tuple(left[start : start + MAX_TICKS_PER_EVENT])))
        arriving = [(t, True) for t in caught] + arriving
    overlap = doc["overlap"]
    # Catching up with ``all``, a tick on time takes its turn behind the missed ones rather than being skipped.
    catching_up = doc["catchup"] == "all" and overlap != "allow" and (bool(missed) or bool(queue))
    for tick, caught_up in arriving:
        in_order = catching_up
        if in_order or overlap == "queue":
            if active or queue:
                steps.append(Step(QUEUE, (tick,), caught_up=caught_up))
                queue.append((tick, caught_up))
                continue
        elif active and overlap == "skip":
            steps.append(Step(SKIP, (tick,)))
            continue
        steps.append(Step(FIRE, (tick,), caught_up=caught_up, replace=active and overlap == "replace"))
        active = True
    if not queue and not more:
        last = max([cursor, *due])
        following = timing.next_after(last)
        if following is None:
            # Recorded on ScheduleEnded: the log already holds these words, so they stay as they are.
            reason = "the --at tick was handled" if isinstance(timing, OneTime) else "no tick is left"
            steps.append(Step(END, reason=reason))
        elif end is not None and following > end:
            steps.append(Step(END, reason=f"the next tick is after --end {doc['end']}"))
    return steps


def next_tick(doc: Doc, timing: CronExpression | OneTime) -> datetime | None:
    """When the schedule's next tick after its cursor fires (None when paused, ended or past ``end``)."""
    if doc["status"] != ACTIVE:
        return None
    following = timing.next_after(instant(doc["cursor"]))
    if following is None or (doc.get("end") and following > instant(doc["end"])):
        return None
    return fire_time(doc, following)
