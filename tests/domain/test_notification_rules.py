"""Notification rules as tables: the section's validation, tags, backoff, claims, outcomes, signatures, Slack."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from queue_core.domain.notifications import (
    Outcome,
    RetryPolicy,
    apply_notification,
    decide_claim,
    decide_outcome,
    dues,
    is_ready,
    retry_delay_seconds,
)
from queue_core.errors import InvalidInput
from queue_core.eventlog.events import Recorded, RunFailed
from queue_core.specs.notifications import SCHEDULE_EVENTS, destination_label, normalize_notifications, secret_names
from queue_core.specs.tags import check_tag, merge_tags
from queue_core.timefmt import format_utc
from scheduler.notify_senders import sign, slack_message, verify_signature, webhook_request

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
POLICY = RetryPolicy(first=10, longest=60, give_up_after=300)
HOOK = {"webhook": "https://hooks.example.com/in", "secret": {"secret": "hook"}}


@pytest.mark.parametrize(
    ("section", "field", "events"),
    [
        ({"onFailure": [{"webhook": "ftp://x.com/a"}]}, "n.onFailure[0].webhook", None),
        ({"onFailure": [{"webhook": "https://x.com/a", "secret": "literal"}]}, "n.onFailure[0].secret", None),
        ({"onFailure": [{"slack": "https://x.com/a", "email": "a@b.co"}]}, "n.onFailure[0]", None),
        ({"onFailure": []}, "n.onFailure", None),
        ({"onFailure": [HOOK] * 11}, "n.onFailure", None),
        ({"onDurationWarning": {"after": 0, "to": [HOOK]}}, "n.onDurationWarning.after", None),
        ({"onDurationWarning": {"to": [HOOK]}}, "n.onDurationWarning.after", None),
        ({"onRetry": [HOOK]}, "n.onRetry", None),
        ({"onMissedTick": [HOOK]}, "n.onMissedTick", None),
        ({"onFailure": [HOOK]}, "n.onFailure", SCHEDULE_EVENTS),
        ({"onFailure": [{"email": "a@b"}]}, "n.onFailure[0].email", None),
    ],
)
def test_a_bad_section_is_refused_naming_the_field(section: Any, field: str, events: Any):
    with pytest.raises(InvalidInput) as caught:
        normalize_notifications(section, "n", *(events,) if events else ())
    assert caught.value.field == field


def test_a_good_section_is_kept_with_its_secrets_and_labels_hide_url_paths():
    section = {
        "onStart": [{"slack": "https://hooks.slack.com/services/T0/B0/TOKEN"}],
        "onFailure": [HOOK, {"email": "oncall@example.com"}],
        "onDurationWarning": {"after": 90, "to": [{"webhook": "http://127.0.0.1:9/x", "secret": {"secret": "two"}}]},
    }
    assert normalize_notifications(section, "n") == {
        **section,
        "onDurationWarning": {**section["onDurationWarning"], "after": 90.0},
    }
    assert secret_names(section) == ["hook", "two"]
    assert destination_label(section["onStart"][0]) == "slack https://hooks.slack.com"


@pytest.mark.parametrize(
    ("tag", "ok"),
    [("team:data", True), ("cost-center=42", True), ("eu/west_1.a", True), ("x" * 64, True), ("", False),
     ("x" * 65, False), ("a b", False), ("a,b", False), ("é", False), (3, False)],
)  # fmt: skip
def test_tag_syntax(tag: Any, ok: bool):
    if ok:
        assert check_tag(tag) == tag
    else:
        with pytest.raises(InvalidInput):
            check_tag(tag)


def test_inherited_tags_keep_their_order_once_and_are_bounded():
    assert merge_tags(["a", "b"], ["b", "c"], ["a"]) == ["a", "b", "c"]
    with pytest.raises(InvalidInput):
        merge_tags([f"d{i}" for i in range(20)], [f"s{i}" for i in range(13)])


@pytest.mark.parametrize(("attempt", "seconds"), [(1, 10), (2, 20), (3, 40), (4, 60), (40, 60)])
def test_the_wait_doubles_up_to_the_longest(attempt: int, seconds: float):
    assert retry_delay_seconds(attempt, POLICY) == seconds


def rec(event: Any, aggregate: str = "notification:x", version: int = 1, at: datetime = NOW) -> Recorded:
    return Recorded(
        f"{int(at.timestamp() * 1000)}-0",
        f"e{version}",
        type(event).__name__,
        aggregate,
        version,
        format_utc(at),
        event,
    )


def due_doc() -> dict[str, Any]:
    trigger = rec(RunFailed(attempt=1, reason="NonZeroExitCode"), aggregate="run-1")
    [(aggregate, due)] = dues(trigger, "onFailure", [HOOK], "run", "run-1", "nightly", {"event": "onFailure"})
    doc = apply_notification(None, rec(due, aggregate))
    assert doc is not None
    return doc


def test_the_same_event_and_destination_make_the_same_notification_id():
    trigger = rec(RunFailed(attempt=1, reason="x"), aggregate="run-1")
    first = dues(trigger, "onFailure", [HOOK, HOOK], "run", "run-1", "n", {})
    again = dues(trigger, "onFailure", [HOOK, HOOK], "run", "run-1", "n", {})
    assert [a for a, _ in first] == [a for a, _ in again] and first[0][0] != first[1][0]
    assert first[0][1].payload["id"] == first[0][0]  # the receiver's idempotency id


@pytest.mark.parametrize(
    ("outcome", "attempt", "now", "expected"),
    [
        (Outcome(delivered=True, status=204), 1, NOW, "NotificationDelivered"),
        (Outcome(delivered=False, status=500, error="HTTP 500"), 1, NOW, "NotificationFailed"),
        (Outcome(delivered=False, status=404, error="HTTP 404", permanent=True), 1, NOW, "NotificationAbandoned"),
        (Outcome(delivered=False, error="refused"), 9, NOW + timedelta(seconds=250), "NotificationAbandoned"),
    ],
)
def test_an_outcome_is_delivered_retried_or_given_up(outcome: Outcome, attempt: int, now: datetime, expected: str):
    [event] = decide_outcome(due_doc(), attempt, outcome, now, POLICY)
    assert type(event).__name__ == expected


def test_a_claim_holds_until_its_lease_then_the_next_attempt_may_be_claimed():
    doc = due_doc()
    assert is_ready(doc, NOW)
    claim = decide_claim(doc, "a", NOW, 40)
    claimed = apply_notification(doc, rec(claim, version=2))
    assert claimed is not None and claim.attempt == 1
    assert not is_ready(claimed, NOW + timedelta(seconds=39))
    assert is_ready(claimed, NOW + timedelta(seconds=40))  # the deliverer died between sending and recording
    assert decide_claim(claimed, "b", NOW + timedelta(seconds=40), 40).attempt == 2


def test_a_signature_verifies_only_with_its_secret_body_and_a_recent_time():
    body, headers = webhook_request({"id": "notification:1", "event": "onFailure"}, "s3cret", 1_700_000_000)
    header = headers["Jobledger-Signature"]
    assert header == f"t=1700000000,v1={sign('s3cret', 1_700_000_000, body)}"
    assert verify_signature("s3cret", header, body, 1_700_000_100)
    assert not verify_signature("other", header, body, 1_700_000_100)
    assert not verify_signature("s3cret", header, body + b" ", 1_700_000_100)
    assert not verify_signature("s3cret", header, body, 1_700_001_000)  # too old: a replay
    assert headers["Idempotency-Key"] == "notification:1"


def test_a_slack_message_has_a_fallback_text_and_blocks():
    payload = {"event": "onFailure", "run": "r1", "definition": "etl", "status": "FAILED", "reason": "Timeout",
               "log_excerpt": "boom", "console_url": "http://c/runs/r1"}  # fmt: skip
    message = slack_message(payload)
    assert message["text"] == "jobledger: run r1 of etl failed (Timeout)"
    assert [b["type"] for b in message["blocks"]] == ["section", "section", "section", "context"]
    assert "<http://c/runs/r1|Open in jobledger>" in message["blocks"][-1]["elements"][0]["text"]
