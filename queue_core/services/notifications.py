"""Notification use cases: check a section's secrets exist, list deliveries, and record a delivery's steps."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from queue_core.domain.notifications import (
    ABANDONED,
    Outcome,
    RetryPolicy,
    apply_notification,
    claimed_at_proposal,
    decide_claim,
    decide_outcome,
    is_ready,
)
from queue_core.errors import ConcurrencyError, InvalidInput, Remedy
from queue_core.eventlog.aggregates import folded, load_state
from queue_core.eventlog.events import NewEvent, NotificationAttempted, NotificationDue, RunDurationExceeded
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import ReadModels
from queue_core.specs.notifications import JOB_EVENTS, SCHEDULE_EVENTS, destinations_of

__all__ = ["DURATION_PREFIX", "NotificationService", "check_secrets_exist"]

Doc = dict[str, Any]
PAGE = 500
DURATION_PREFIX = "duration:"  # the aggregate of a run's RunDurationExceeded: appended once, at version 0


def check_secrets_exist(store: EventStore, section: Mapping[str, Any] | None, field: str) -> None:
    """Refuse a destination naming a secret that is not set, naming the destination's field."""
    for event in (*JOB_EVENTS, *SCHEDULE_EVENTS):
        for number, dest in enumerate(destinations_of(section, event)):
            if "secret" not in dest:
                continue
            name = dest["secret"]["secret"]
            if not store.redis.hexists(store.keys.secrets, name):
                where = f"{field}.{event}" + (".to" if event == "onDurationWarning" else "")
                raise InvalidInput(
                    f"secret {name!r} is not set", f"{where}[{number}].secret", remedy=Remedy.SET_SECRET, subject=name
                )


class NotificationService:
    """Notifications on one store: listing them, and each step a deliverer records (load, decide, append)."""

    def __init__(self, store: EventStore, read_models: ReadModels) -> None:
        self.store = store
        self.read_models = read_models

    def listing(self, subject: str | None = None, failed: bool = False, limit: int | None = 100) -> list[Doc]:
        """Notifications newest first: of one run, workflow run or schedule; only those abandoned (``failed``)."""
        self.read_models.catch_up()
        index = f"subject:{subject}" if subject else (f"status:{ABANDONED}" if failed else "all")
        found: list[Doc] = []
        offset = 0
        while limit is None or len(found) < limit:
            ids = self.read_models.newest("notifications", index, offset, PAGE)
            if not ids:
                break
            for doc in self.read_models.get_many("notifications", ids):
                if doc and (not failed or doc["status"] == ABANDONED):
                    found.append(doc)
            offset += PAGE
        return found if limit is None else found[:limit]

    def open(self) -> list[Doc]:
        """Every notification not yet delivered nor abandoned, oldest first."""
        self.read_models.catch_up()
        ids = [entity for entity, _ in self.read_models.scored("notifications", "open")]
        return [doc for doc in self.read_models.get_many("notifications", ids) if doc]

    def propose_claimed(
        self, dues: Sequence[tuple[str, NotificationDue]], deliverer: str, now: datetime, lease_seconds: float
    ) -> list[tuple[Doc, NotificationDue]]:
        """Append each due notification not appended yet, its first attempt claimed by ``deliverer``: one append
        for them all when none is there yet, else one each. Returns (document, event) of those this call added:
        this deliverer sends them, and records how each went at version 1."""
        claimed = [(aggregate, claimed_at_proposal(due, deliverer, now, lease_seconds)) for aggregate, due in dues]
        try:
            recorded = self.store.append([NewEvent(a, due) for a, due in claimed], {a: 0 for a, _ in claimed})
        except ConcurrencyError:  # another notifier reacted to some of the same events first
            recorded = []
            for aggregate, due in claimed:
                with contextlib.suppress(ConcurrencyError):
                    recorded += self.store.append([NewEvent(aggregate, due)], {aggregate: 0})
        out = []
        for rec in recorded:
            doc = apply_notification(None, rec)
            assert doc is not None and isinstance(rec.event, NotificationDue)
            out.append((doc, rec.event))
        return out

    def record_many(self, outcomes: Sequence[tuple[Doc, int, Outcome, int]], now: datetime, policy: RetryPolicy) -> int:
        """Record several claimed attempts' outcomes, each (document at its claim, attempt, outcome, claim's
        version): one append when nothing landed after any claim, else each as ``record`` does. Returns how many
        were recorded."""
        batch = [
            NewEvent(doc["id"], event)
            for doc, attempt, outcome, _ in outcomes
            for event in decide_outcome(doc, attempt, outcome, now, policy)
        ]
        if not batch:
            return 0
        try:
            self.store.append(batch, {doc["id"]: version for doc, _, _, version in outcomes})
            return len(outcomes)
        except ConcurrencyError:  # a claim taken over after its lease ran out: decide each on what is there now
            return sum(self.record(doc["id"], a, o, now, policy, (doc, v)) for doc, a, o, v in outcomes)

    def warn_duration(self, run_id: str, definition: str, after: float, started_at: str) -> bool:
        """Record that the run went past its warning time; False when that is recorded already."""
        aggregate = DURATION_PREFIX + run_id
        event = RunDurationExceeded(run=run_id, definition=definition, after=after, started_at=started_at)
        try:
            self.store.append([NewEvent(aggregate, event)], {aggregate: 0})
        except ConcurrencyError:
            return False
        return True

    def claim(
        self, notification_id: str, deliverer: str, now: datetime, lease_seconds: float
    ) -> tuple[Doc, NotificationAttempted, NotificationDue, int] | None:
        """Claim the notification's next attempt: (its document before the claim, the claim, its due event, the
        claim's version), or None when it is not ready or another deliverer claimed it first."""
        events = self.store.load(notification_id)
        doc = folded(notification_id, events, apply_notification)
        if doc is None or not is_ready(doc, now):
            return None
        claim = decide_claim(doc, deliverer, now, lease_seconds)
        try:
            self.store.append([NewEvent(notification_id, claim)], {notification_id: len(events)})
        except ConcurrencyError:
            return None
        due = events[0].event
        assert isinstance(due, NotificationDue)
        return doc, claim, due, len(events) + 1

    def record(
        self,
        notification_id: str,
        attempt: int,
        outcome: Outcome,
        now: datetime,
        policy: RetryPolicy,
        claimed: tuple[Doc, int] | None = None,
    ) -> bool:
        """Record the outcome of the attempt this deliverer claimed; False when its claim was taken over
        (its lease ran out and another attempt was claimed: that one is recorded instead).

        ``claimed``: the document and claim version ``claim`` returned; the outcome is appended right after the
        claim with no read (one round trip less a delivery), and only if anything landed since is the
        notification read and decided again.
        """
        if claimed is not None:
            before_claim, claim_version = claimed
            events = decide_outcome(before_claim, attempt, outcome, now, policy)
            try:
                self.store.append([NewEvent(notification_id, e) for e in events], {notification_id: claim_version})
                return True
            except ConcurrencyError:
                pass  # something landed after the claim: decide on what is there now
        doc, version = load_state(self.store, notification_id, apply_notification)
        if doc is None or doc["attempts"] != attempt:
            return False
        events = decide_outcome(doc, attempt, outcome, now, policy)
        try:
            self.store.append([NewEvent(notification_id, e) for e in events], {notification_id: version})
        except ConcurrencyError:
            return False
        return True
