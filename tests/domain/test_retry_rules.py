"""Retry rules and backoff as tables: which rule decides a failed attempt, and the wait its backoff records.

Each row folds a running run whose strategy holds the rules, decides its attempt's failure, and says what
the decision is. No Redis, no clock: ``now`` is given.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

import pytest

from queue_core.domain.retries import retry_delay_minutes
from queue_core.domain.runs import FAILED, NON_ZERO_EXIT, PENDING, TIMEOUT, WORKER_LOST, apply_run, decide_failure
from queue_core.eventlog.events import Event, RunFailed, RunQueued, RunRetryScheduled, RunStarted, RunSubmitted
from tests.support.events import fold, fold_more
from tests.support.tables import cases

RUN = "run-1"
NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
EXIT_3_RETRIES_4_EXITS = [{"onExitCode": [4], "action": "EXIT"}, {"onExitCode": [3], "action": "RETRY"}]


def running(strategy: dict[str, Any], attempt: int = 1) -> dict[str, Any]:
    source = {"type": "WORKSPACE", "sourceDef": {"path": "jobs"}}
    retry = {"numRetries": 2, "delayBetweenRetries": 0.0, "retryOnTimeout": False, **strategy}
    job = {"type": "SHELL", "source": source, "sourceLocation": "x.sh", "timeout": 1.0, "retryStrategy": retry}
    events: list[Event] = [
        RunSubmitted(definition_id="d", definition="nightly", definition_version=1, cluster="default", job=job),
        RunQueued(attempt, f"{RUN}-{attempt}"),
        RunStarted(attempt, "w1", "host", 100),
    ]
    doc = fold(apply_run, RUN, events)
    assert doc is not None
    return {**doc, "attempt": attempt}


class Rule(NamedTuple):
    name: str
    rules: list[dict[str, Any]]
    reason: str
    exit_code: int | None
    log_matches: tuple[int, ...]
    retried: bool
    rule: int | None


RULES = [
    Rule("exit-code-3-retries-by-rule", EXIT_3_RETRIES_4_EXITS, NON_ZERO_EXIT, 3, (), True, 1),
    Rule("exit-code-4-exits-by-rule", EXIT_3_RETRIES_4_EXITS, NON_ZERO_EXIT, 4, (), False, 0),
    Rule("exit-code-matching-no-rule-is-todays-retry", EXIT_3_RETRIES_4_EXITS, NON_ZERO_EXIT, 5, (), True, None),
    Rule("exit-code-pattern-7-star-matches-70", [{"onExitCode": ["7*"], "action": "EXIT"}], NON_ZERO_EXIT, 70, (),
         False, 0),
    Rule("exit-code-pattern-7-star-misses-17", [{"onExitCode": ["7*"], "action": "EXIT"}], NON_ZERO_EXIT, 17, (),
         True, None),
    Rule("no-exit-code-matches-no-exit-code-rule", [{"onExitCode": ["*"], "action": "EXIT"}], WORKER_LOST, None, (),
         True, None),
    Rule("reason-alternatives-match-worker-lost", [{"onReason": "Timeout|WorkerLost", "action": "EXIT"}],
         WORKER_LOST, None, (), False, 0),
    Rule("reason-must-match-whole", [{"onReason": "Time", "action": "EXIT"}], TIMEOUT, None, (), False, None),
    Rule("reason-rule-retries-a-timeout-without-retry-on-timeout", [{"onReason": "Timeout", "action": "RETRY"}],
         TIMEOUT, None, (), True, 0),
    Rule("log-match-recorded-exits", [{"onLogMatch": "OutOfMemory", "action": "EXIT"}], NON_ZERO_EXIT, 1, (0,),
         False, 0),
    Rule("log-match-not-recorded-retries", [{"onLogMatch": "OutOfMemory", "action": "EXIT"}], NON_ZERO_EXIT, 1, (),
         True, None),
    Rule("every-condition-of-a-rule-must-hold", [{"onExitCode": [1], "onLogMatch": "x", "action": "EXIT"}],
         NON_ZERO_EXIT, 1, (), True, None),
    Rule("first-match-wins", [{"onExitCode": [1], "action": "RETRY"}, {"onExitCode": [1], "action": "EXIT"}],
         NON_ZERO_EXIT, 1, (), True, 0),
]  # fmt: skip


@pytest.mark.parametrize("row", cases(RULES))
def test_the_first_matching_rule_decides_and_no_match_is_todays_behaviour(row: Rule):
    doc = running({"rules": row.rules})
    decided = decide_failure(doc, 1, row.reason, row.exit_code, "exit", NOW, row.log_matches)
    assert decided[0].log_matches == row.log_matches  # type: ignore[attr-defined]
    last = decided[-1]
    assert isinstance(last, RunRetryScheduled if row.retried else RunFailed)
    assert last.rule == row.rule
    after = fold_more(apply_run, doc, decided, after=3)
    assert (after["status"], after["retry_rule"]) == (PENDING if row.retried else FAILED, row.rule)


def test_a_rule_that_exits_says_so_in_the_runs_message():
    doc = running({"rules": EXIT_3_RETRIES_4_EXITS})
    decided = decide_failure(doc, 1, NON_ZERO_EXIT, 4, "exit code 4", NOW)
    after = fold_more(apply_run, doc, decided, after=3)
    assert (after["status"], after["reason"]) == (FAILED, NON_ZERO_EXIT)
    assert after["message"] == "exit code 4; not retried: retryStrategy.rules[0] says EXIT"


def test_a_retry_rule_still_stops_when_no_attempts_remain():
    doc = running({"rules": EXIT_3_RETRIES_4_EXITS, "numRetries": 0})
    decided = decide_failure(doc, 1, NON_ZERO_EXIT, 3, "exit code 3", NOW)
    assert isinstance(decided[-1], RunFailed) and decided[-1].message == "exit code 3"


class Backoff(NamedTuple):
    name: str
    delay: float
    backoff: dict[str, Any]
    waits: list[float]  # after attempts 1, 2, 3, 4


BACKOFFS = [
    Backoff("fixed-is-the-delay-each-time", 2, {"type": "fixed", "max": 60, "jitter": False}, [2, 2, 2, 2]),
    Backoff("fixed-capped-by-max", 2, {"type": "fixed", "max": 1.5, "jitter": False}, [1.5, 1.5, 1.5, 1.5]),
    Backoff("exponential-doubles", 1, {"type": "exponential", "factor": 2, "max": 60, "jitter": False}, [1, 2, 4, 8]),
    Backoff("exponential-triples-up-to-max", 1, {"type": "exponential", "factor": 3, "max": 10, "jitter": False},
            [1, 3, 9, 10]),
]  # fmt: skip


@pytest.mark.parametrize("row", cases(BACKOFFS))
def test_backoff_sets_the_wait_recorded_on_each_retry(row: Backoff):
    strategy = {"numRetries": 4, "delayBetweenRetries": row.delay, "backoff": row.backoff}
    for attempt, wait in enumerate(row.waits, start=1):
        decided = decide_failure(running(strategy, attempt), attempt, NON_ZERO_EXIT, 1, "exit", NOW)
        retry = decided[-1]
        assert isinstance(retry, RunRetryScheduled)
        assert retry.delay_minutes == wait
        expected = NOW.timestamp() + wait * 60
        assert datetime.fromisoformat(retry.not_before.replace("Z", "+00:00")).timestamp() == expected


def test_jitter_waits_between_half_and_all_of_the_wait_the_same_on_every_replay():
    strategy = {"delayBetweenRetries": 8, "backoff": {"type": "exponential", "factor": 2, "max": 60, "jitter": True}}
    waits = [retry_delay_minutes(strategy, f"run-{n}", 2) for n in range(50)]
    assert all(8 <= wait <= 16 for wait in waits)
    assert len(set(waits)) > 40  # runs that failed together spread out
    assert waits == [retry_delay_minutes(strategy, f"run-{n}", 2) for n in range(50)]
