"""Notifications: the fold of one delivery's events and the decisions that claim, retry and give it up.

One aggregate per (trigger event, destination), its id derived from both: every notifier reacting to the
same event proposes the same ``NotificationDue`` at version 0, so one lands. A deliverer claims an attempt
(``NotificationAttempted``, at the version it read, with a lease), sends, and records the outcome at the
next version; the proposer claims the first attempt in the ``NotificationDue`` itself, so a notification
delivered at once is two events. Two deliverers never both send one attempt; a deliverer that dies between sending and
recording leaves a claim whose lease runs out, and the attempt after it is sent with the same id (the
receiver's idempotency key): delivered at least once, recorded once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from queue_core.domain.runs import order_score
from queue_core.eventlog.events import (
    Event,
    NotificationAbandoned,
    NotificationAttempted,
    NotificationDelivered,
    NotificationDue,
    NotificationFailed,
    Recorded,
)
from queue_core.specs.notifications import destination_label
from queue_core.timefmt import format_utc, parse_utc

__all__ = [
    "ABANDONED",
    "DELIVERED",
    "DUE",
    "NOTIFICATION_EVENTS",
    "SENDING",
    "Outcome",
    "RetryPolicy",
    "apply_notification",
    "claimed_at_proposal",
    "decide_claim",
    "decide_outcome",
    "dues",
    "is_ready",
    "notification_id",
    "retry_delay_seconds",
]

DUE, SENDING, DELIVERED, ABANDONED = "DUE", "SENDING", "DELIVERED", "ABANDONED"
NOTIFICATION_EVENTS = frozenset(
    {"NotificationDue", "NotificationAttempted", "NotificationDelivered", "NotificationFailed", "NotificationAbandoned"}
)
AGGREGATE_PREFIX = "notification:"
MAX_ERROR_CHARS = 300
_NAMESPACE = uuid.UUID("5f0c2f4e-8a7b-5c39-9a51-6d1e3b2a7c10")  # fixed: the ids of a log never change

Doc = dict[str, Any]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff between attempts (``first`` doubling up to ``longest`` seconds), for at most
    ``give_up_after`` seconds from the notification falling due."""

    first: float
    longest: float
    give_up_after: float


@dataclass(frozen=True)
class Outcome:
    """What one send came to: ``delivered``; else ``error`` (short, masked) and whether retrying can help."""

    delivered: bool
    status: int | None = None
    error: str = ""
    permanent: bool = False


def notification_id(trigger_event_id: str, destination_index: int, event: str) -> str:
    """The aggregate (and the receiver's idempotency id) of one destination of one triggering event."""
    return AGGREGATE_PREFIX + str(uuid.uuid5(_NAMESPACE, f"{trigger_event_id}/{event}/{destination_index}"))


def dues(
    trigger: Recorded,
    event: str,
    destinations: Sequence[Mapping[str, Any]],
    subject_kind: str,
    subject: str,
    name: str,
    payload: Mapping[str, Any],
) -> list[tuple[str, NotificationDue]]:
    """One ``NotificationDue`` per destination of ``event``, each with its derived aggregate id."""
    out = []
    for index, destination in enumerate(destinations):
        aggregate = notification_id(trigger.event_id, index, event)
        body = {**payload, "id": aggregate}
        out.append(
            (
                aggregate,
                NotificationDue(
                    event=event,
                    subject_kind=subject_kind,
                    subject=subject,
                    name=name,
                    destination=dict(destination),
                    payload=body,
                    trigger=trigger.position,
                ),
            )
        )
    return out


def claimed_at_proposal(due: NotificationDue, deliverer: str, now: datetime, lease_seconds: float) -> NotificationDue:
    """``due`` with its first attempt claimed by ``deliverer`` until ``now + lease_seconds``: the proposal that
    lands is the claim too (one event less), and a proposer that dies before recording leaves a lease that
    runs out, as a claim's does."""
    return replace(due, deliverer=deliverer, lease_until=format_utc(now + timedelta(seconds=lease_seconds)))


def retry_delay_seconds(attempt: int, policy: RetryPolicy) -> float:
    """The wait after failed attempt ``attempt`` (1, 2, ...): ``first`` doubled each time, at most ``longest``."""
    return float(min(policy.first * 2 ** min(attempt - 1, 60), policy.longest))


def is_ready(doc: Doc, now: datetime) -> bool:
    """Whether an attempt may be claimed now: due and its time come, or a claim whose lease ran out."""
    if doc["status"] == DUE:
        return parse_utc(doc["next_at"]) <= now
    if doc["status"] == SENDING:
        return parse_utc(doc["lease_until"]) <= now
    return False


def decide_claim(doc: Doc, deliverer: str, now: datetime, lease_seconds: float) -> NotificationAttempted:
    """Claim the next attempt until ``now + lease_seconds`` (appended at the version read: one claim wins)."""
    return NotificationAttempted(
        attempt=doc["attempts"] + 1,
        deliverer=deliverer,
        lease_until=format_utc(now + timedelta(seconds=lease_seconds)),
    )


def decide_outcome(doc: Doc, attempt: int, outcome: Outcome, now: datetime, policy: RetryPolicy) -> list[Event]:
    """Record attempt ``attempt``: delivered; failed and retried after the backoff; or abandoned, when the
    destination refused for good or the next try would fall after ``give_up_after``."""
    if outcome.delivered:
        return [NotificationDelivered(attempt=attempt, status=outcome.status)]
    error = outcome.error[:MAX_ERROR_CHARS]
    retry_at = now + timedelta(seconds=retry_delay_seconds(attempt, policy))
    deadline = parse_utc(doc["due_at"]) + timedelta(seconds=policy.give_up_after)
    if outcome.permanent or retry_at > deadline:
        return [NotificationAbandoned(attempt=attempt, error=error)]
    return [NotificationFailed(attempt=attempt, error=error, retry_at=format_utc(retry_at))]


def is_open(doc: Doc) -> bool:
    """Not delivered nor abandoned yet: what a deliverer looks at."""
    return doc["status"] in (DUE, SENDING)


def _due(doc: Doc | None, rec: Recorded, e: NotificationDue) -> Doc:
    due = {
        "id": rec.aggregate,
        "event": e.event,
        "subject_kind": e.subject_kind,
        "subject": e.subject,
        "name": e.name,
        "destination": destination_label(e.destination),
        "kind": next(k for k in ("webhook", "slack", "email") if k in e.destination),
        "status": DUE,
        "order": order_score(rec.position),
        "attempts": 0,
        "due_at": rec.time,
        "next_at": rec.time,
        "lease_until": None,
        "deliverer": None,
        "last_error": None,
        "reply": None,
        "ended_at": None,
        "updated_at": rec.time,
    }
    if e.deliverer is not None:  # its first attempt claimed by the notifier that proposed it
        due = {**due, "status": SENDING, "attempts": 1, "lease_until": e.lease_until, "deliverer": e.deliverer}
    return due


def _attempted(doc: Doc, rec: Recorded, e: NotificationAttempted) -> Doc:
    return {
        **doc,
        "status": SENDING,
        "attempts": e.attempt,
        "lease_until": e.lease_until,
        "deliverer": e.deliverer,
        "updated_at": rec.time,
    }


def _delivered(doc: Doc, rec: Recorded, e: NotificationDelivered) -> Doc:
    return {**doc, "status": DELIVERED, "reply": e.status, "ended_at": rec.time, "updated_at": rec.time}


def _failed(doc: Doc, rec: Recorded, e: NotificationFailed) -> Doc:
    return {**doc, "status": DUE, "next_at": e.retry_at, "last_error": e.error, "updated_at": rec.time}


def _abandoned(doc: Doc, rec: Recorded, e: NotificationAbandoned) -> Doc:
    return {**doc, "status": ABANDONED, "last_error": e.error, "ended_at": rec.time, "updated_at": rec.time}


_HANDLERS: dict[str, Callable[[Any, Recorded, Any], Doc]] = {
    "NotificationDue": _due,
    "NotificationAttempted": _attempted,
    "NotificationDelivered": _delivered,
    "NotificationFailed": _failed,
    "NotificationAbandoned": _abandoned,
}


def apply_notification(doc: Doc | None, rec: Recorded) -> Doc | None:
    """Fold one notification event into its document; the only code that changes a notification."""
    handler = _HANDLERS.get(rec.type)
    if handler is None or (doc is None and handler is not _due):
        return doc
    return handler(doc, rec, rec.event)
