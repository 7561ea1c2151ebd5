"""Runs: what a failed attempt becomes (a retry or the run's failure) and what a cancel does, as tables.

Each row's state is a run's history folded through ``apply_run``; the decision's events are then folded
on too, so a row also says where the run ends up. No Redis, no clock: ``now`` is given.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

import pytest

from queue_core.domain.runs import (
    CANCELLED,
    CANCELLED_BY_USER,
    FAILED,
    IN_QUEUE,
    NON_ZERO_EXIT,
    PENDING,
    RECENTLY_SUBMITTED,
    RUNNING,
    SOURCE_UNAVAILABLE,
    SUCCEEDED,
    TIMEOUT,
    WAITING_TO_RETRY,
    WORKER_LOST,
    apply_run,
    decide_cancel,
    decide_failure,
    ensure_not_terminal,
)
from queue_core.errors import AlreadyTerminal
from queue_core.eventlog.events import (
    Event,
    RunAttemptFailed,
    RunCancelled,
    RunFailed,
    RunQueued,
    RunRetryScheduled,
    RunStarted,
    RunSubmitted,
    RunSucceeded,
)
from tests.support.events import fold, fold_more, project
from tests.support.tables import cases

RUN = "run-1"
NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


# -- histories ------------------------------------------------------------------------------------


def submitted(retries: int = 0, delay: float = 0.0, on_timeout: bool = False) -> RunSubmitted:
    strategy = {"numRetries": retries, "delayBetweenRetries": delay, "retryOnTimeout": on_timeout}
    source = {"type": "WORKSPACE", "sourceDef": {"path": "jobs"}}
    job = {"type": "SHELL", "source": source, "sourceLocation": "nightly.sh", "retryStrategy": strategy, "timeout": 1.0}
    return RunSubmitted(definition_id="def-1", definition="nightly", definition_version=1, cluster="default", job=job)


def running(attempt: int, retries: int = 0, delay: float = 0.0, on_timeout: bool = False) -> list[Event]:
    """A run whose ``attempt``-th attempt is running, each earlier one having failed and been retried."""
    events: list[Event] = [submitted(retries, delay, on_timeout)]
    for n in range(1, attempt + 1):
        if n > 1:
            events += [RunAttemptFailed(n - 1, NON_ZERO_EXIT, 1), RunRetryScheduled(n, "2026-11-21T08:30:00.000000Z")]
        events += [RunQueued(n, f"{RUN}-{n}"), RunStarted(n, "w1", "host", 100 + n)]
    return events


def state(history: list[Event]) -> dict[str, Any]:
    doc = fold(apply_run, RUN, history)
    assert doc is not None
    return doc


# -- a failed attempt: retried, or the run fails for good -----------------------------------------


class Failure(NamedTuple):
    name: str
    history: list[Event]
    attempt: int
    reason: str
    exit_code: int | None
    expected: list[tuple[str, dict[str, Any]]]
    then: tuple[str, str]  # the run's (status, reason) once the decision is folded on


def retried(
    attempt: int, reason: str, exit_code: int | None, then: int, not_before: str = "2026-11-21T09:00:00.000000Z"
):
    return [
        ("RunAttemptFailed", {"attempt": attempt, "reason": reason, "exit_code": exit_code}),
        ("RunRetryScheduled", {"attempt": then, "not_before": not_before}),
    ]


def failed_for_good(attempt: int, reason: str, exit_code: int | None):
    return [
        ("RunAttemptFailed", {"attempt": attempt, "reason": reason, "exit_code": exit_code}),
        ("RunFailed", {"attempt": attempt, "reason": reason, "exit_code": exit_code}),
    ]


RETRIED = [
    Failure("first-of-one-retry", running(1, retries=1), 1, NON_ZERO_EXIT, 3,
            retried(1, NON_ZERO_EXIT, 3, then=2), (PENDING, WAITING_TO_RETRY)),
    Failure("second-of-three-retries", running(2, retries=3), 2, NON_ZERO_EXIT, 1,
            retried(2, NON_ZERO_EXIT, 1, then=3), (PENDING, WAITING_TO_RETRY)),
    Failure("third-of-three-retries", running(3, retries=3), 3, NON_ZERO_EXIT, 1,
            retried(3, NON_ZERO_EXIT, 1, then=4), (PENDING, WAITING_TO_RETRY)),
    Failure("worker-lost-is-retried-like-an-exit", running(1, retries=1), 1, WORKER_LOST, None,
            retried(1, WORKER_LOST, None, then=2), (PENDING, WAITING_TO_RETRY)),
    Failure("source-unavailable-is-retried-too", running(1, retries=2), 1, SOURCE_UNAVAILABLE, None,
            retried(1, SOURCE_UNAVAILABLE, None, then=2), (PENDING, WAITING_TO_RETRY)),
    Failure("killed-by-a-signal", running(1, retries=1), 1, NON_ZERO_EXIT, 137,
            retried(1, NON_ZERO_EXIT, 137, then=2), (PENDING, WAITING_TO_RETRY)),
]  # fmt: skip

FAILED_FOR_GOOD = [
    Failure("no-retries", running(1), 1, NON_ZERO_EXIT, 3,
            failed_for_good(1, NON_ZERO_EXIT, 3), (FAILED, NON_ZERO_EXIT)),
    Failure("the-one-retry-used", running(2, retries=1), 2, NON_ZERO_EXIT, 1,
            failed_for_good(2, NON_ZERO_EXIT, 1), (FAILED, NON_ZERO_EXIT)),
    Failure("last-of-three-retries", running(4, retries=3), 4, NON_ZERO_EXIT, 2,
            failed_for_good(4, NON_ZERO_EXIT, 2), (FAILED, NON_ZERO_EXIT)),
    Failure("worker-lost-with-no-retry", running(1), 1, WORKER_LOST, None,
            failed_for_good(1, WORKER_LOST, None), (FAILED, WORKER_LOST)),
    Failure("source-unavailable-with-no-retry", running(1), 1, SOURCE_UNAVAILABLE, None,
            failed_for_good(1, SOURCE_UNAVAILABLE, None), (FAILED, SOURCE_UNAVAILABLE)),
]  # fmt: skip

TIMEOUTS = [
    Failure("timeout-without-retry-on-timeout-fails-at-once", running(1, retries=2), 1, TIMEOUT, None,
            failed_for_good(1, TIMEOUT, None), (FAILED, TIMEOUT)),
    Failure("a-later-timeout-fails-though-retries-are-left", running(2, retries=3), 2, TIMEOUT, None,
            failed_for_good(2, TIMEOUT, None), (FAILED, TIMEOUT)),
    Failure("timeout-with-retry-on-timeout-is-retried", running(1, retries=2, on_timeout=True), 1, TIMEOUT, None,
            retried(1, TIMEOUT, None, then=2), (PENDING, WAITING_TO_RETRY)),
    Failure("timeout-with-retry-on-timeout-but-no-retries-fails", running(1, on_timeout=True), 1, TIMEOUT, None,
            failed_for_good(1, TIMEOUT, None), (FAILED, TIMEOUT)),
    Failure("timeout-with-retry-on-timeout-and-retries-used", running(3, retries=2, on_timeout=True), 3, TIMEOUT,
            None, failed_for_good(3, TIMEOUT, None), (FAILED, TIMEOUT)),
    Failure("retry-on-timeout-changes-nothing-for-an-exit", running(2, retries=1, on_timeout=True), 2,
            NON_ZERO_EXIT, 1, failed_for_good(2, NON_ZERO_EXIT, 1), (FAILED, NON_ZERO_EXIT)),
]  # fmt: skip

DELAYS = [
    Failure("no-delay-retries-now", running(1, retries=1), 1, NON_ZERO_EXIT, 1,
            retried(1, NON_ZERO_EXIT, 1, 2, "2026-11-21T09:00:00.000000Z"), (PENDING, WAITING_TO_RETRY)),
    Failure("half-a-minute", running(1, retries=1, delay=0.5), 1, NON_ZERO_EXIT, 1,
            retried(1, NON_ZERO_EXIT, 1, 2, "2026-11-21T09:00:30.000000Z"), (PENDING, WAITING_TO_RETRY)),
    Failure("two-minutes", running(1, retries=1, delay=2), 1, NON_ZERO_EXIT, 1,
            retried(1, NON_ZERO_EXIT, 1, 2, "2026-11-21T09:02:00.000000Z"), (PENDING, WAITING_TO_RETRY)),
    Failure("a-day-and-a-half", running(2, retries=2, delay=36 * 60), 2, WORKER_LOST, None,
            retried(2, WORKER_LOST, None, 3, "2026-11-22T21:00:00.000000Z"), (PENDING, WAITING_TO_RETRY)),
]  # fmt: skip


def check_failure(row: Failure) -> None:
    doc = state(row.history)
    decided = decide_failure(doc, row.attempt, row.reason, row.exit_code, "the attempt's message", NOW)
    assert project(decided, row.expected) == row.expected
    assert all(getattr(event, "message", "the attempt's message") == "the attempt's message" for event in decided)
    after = fold_more(apply_run, doc, decided, after=len(row.history))
    assert (after["status"], after["reason"]) == row.then
    assert after["attempts"][-1]["status"] == FAILED  # the attempt itself is recorded failed either way


@pytest.mark.parametrize("row", cases(RETRIED))
def test_a_failed_attempt_is_retried_while_retries_are_left(row: Failure):
    check_failure(row)


@pytest.mark.parametrize("row", cases(FAILED_FOR_GOOD))
def test_a_failed_attempt_with_no_retry_left_fails_the_run_for_good(row: Failure):
    check_failure(row)


@pytest.mark.parametrize("row", cases(TIMEOUTS))
def test_a_timeout_is_retried_only_when_retry_on_timeout(row: Failure):
    check_failure(row)


@pytest.mark.parametrize("row", cases(DELAYS))
def test_a_retry_waits_the_strategys_delay_in_minutes_from_now(row: Failure):
    check_failure(row)


# -- cancel -----------------------------------------------------------------------------------------


class Cancel(NamedTuple):
    name: str
    history: list[Event]
    attempt: int | None  # the attempt the cancel names; None: refused
    error: str | None = None  # the refusal's message


def _succeeded(attempt: int = 1) -> list[Event]:
    return [*running(attempt, retries=attempt - 1), RunSucceeded(attempt)]


CANCELS = [
    Cancel("recently-submitted", [submitted()], 1),
    Cancel("in-queue", [submitted(), RunQueued(1, f"{RUN}-1")], 1),
    Cancel("running", running(1), 1),
    Cancel("waiting-to-retry", [*running(1, retries=1), RunAttemptFailed(1, TIMEOUT),
                                RunRetryScheduled(2, "2026-11-21T10:00:00.000000Z")], 2),
    Cancel("running-its-third-attempt", running(3, retries=2), 3),
    Cancel("succeeded", _succeeded(), None, f"run {RUN} already ended: SUCCEEDED"),
    Cancel("succeeded-on-a-retry", _succeeded(2), None, f"run {RUN} already ended: SUCCEEDED"),
    Cancel("failed", [*running(1), RunAttemptFailed(1, NON_ZERO_EXIT, 3), RunFailed(1, NON_ZERO_EXIT, 3)], None,
           f"run {RUN} already ended: FAILED (NonZeroExitCode)"),
    Cancel("cancelled", [submitted(), RunCancelled(CANCELLED_BY_USER, 1)], None,
           f"run {RUN} already ended: CANCELLED (Cancelled by user)"),
]  # fmt: skip


@pytest.mark.parametrize("row", cases(c for c in CANCELS if c.error is None))
def test_a_run_that_has_not_ended_is_cancelled_at_its_current_attempt(row: Cancel):
    doc = state(row.history)
    ensure_not_terminal(doc)  # no refusal
    decided = decide_cancel(doc)
    expected = [("RunCancelled", {"reason": CANCELLED_BY_USER, "attempt": row.attempt})]
    assert project(decided, expected) == expected
    after = fold_more(apply_run, doc, decided, after=len(row.history))
    assert (after["status"], after["reason"]) == (CANCELLED, CANCELLED_BY_USER)
    assert RUNNING not in [a["status"] for a in after["attempts"]]  # a running attempt is cancelled with it


@pytest.mark.parametrize("row", cases(c for c in CANCELS if c.error is not None))
def test_an_ended_run_is_refused_a_cancel_with_its_state(row: Cancel):
    doc = state(row.history)
    for refuse in (ensure_not_terminal, decide_cancel):
        with pytest.raises(AlreadyTerminal) as refused:
            refuse(doc)
        assert str(refused.value) == row.error
        assert refused.value.status == doc["status"]


def test_the_states_a_cancel_starts_from_are_what_the_fold_says():
    """The table above names its rows after the run's state: the fold agrees."""
    shown = {row.name: (lambda d: (d["status"], d["reason"]))(state(row.history)) for row in CANCELS}
    assert shown == {
        "recently-submitted": (PENDING, RECENTLY_SUBMITTED),
        "in-queue": (PENDING, IN_QUEUE),
        "running": (RUNNING, None),
        "waiting-to-retry": (PENDING, WAITING_TO_RETRY),
        "running-its-third-attempt": (RUNNING, None),
        "succeeded": (SUCCEEDED, None),
        "succeeded-on-a-retry": (SUCCEEDED, None),
        "failed": (FAILED, NON_ZERO_EXIT),
        "cancelled": (CANCELLED, CANCELLED_BY_USER),
    }
