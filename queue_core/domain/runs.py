"""Runs: the one fold of a run's events and the decisions that move a run between states."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from queue_core.domain.retries import matching_rule, retry_delay_minutes
from queue_core.errors import AlreadyTerminal
from queue_core.eventlog.events import (
    Event,
    Recorded,
    RunArrayChildrenEnded,
    RunArrayExpanded,
    RunAttemptFailed,
    RunCancelled,
    RunCauseRecorded,
    RunFailed,
    RunForEachCarried,
    RunQueued,
    RunRetryScheduled,
    RunStarted,
    RunSubmitted,
    RunSucceeded,
    RunValuesPublished,
    RunWaiting,
)
from queue_core.timefmt import format_utc

__all__ = [
    "CANCELLED",
    "FAILED",
    "PENDING",
    "RUNNING",
    "STATUSES",
    "SUCCEEDED",
    "TERMINAL",
    "apply_run",
    "decide_cancel",
    "decide_failure",
    "is_terminal",
    "job_title",
    "public_view",
]

PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED = "PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"
STATUSES = (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED)
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})
RECENTLY_SUBMITTED, IN_QUEUE, WAITING_TO_RETRY = "Recently submitted", "In queue", "Waiting to retry"
CANCELLED_BY_USER = "Cancelled by user"
RETRY = "RETRY"  # a retry rule's action that retries; its other, EXIT, ends the run
INTERNAL_ERROR = "InternalError"  # the attempt's own machinery failed (an exception jobledger did not expect)
UNDELIVERABLE = "Undeliverable"  # delivered again and again, never getting as far as starting
NON_ZERO_EXIT, TIMEOUT, WORKER_LOST, SOURCE_UNAVAILABLE = (
    "NonZeroExitCode",
    "Timeout",
    "WorkerLost",
    "SourceUnavailable",
)

PUBLIC_KEYS = (
    "id",
    "definition",
    "definition_version",
    "cluster",
    "status",
    "reason",
    "exit_code",
    "submitted_at",
    "finished_at",
    "attempts",
    "result",
    "values",
    "logical_date",
    "workflow_run",
    "task",
    "not_before",
    "retry_rule",
    "cause",
    "tags",
    "array",
    "array_parent",
    "array_index",
)


def is_terminal(doc: dict[str, Any]) -> bool:
    return doc["status"] in TERMINAL


def order_score(position: str) -> float:
    """A sortable number for a log position (``ms-seq``), newest highest."""
    ms, _, seq = position.partition("-")
    return int(ms) * 1000 + min(int(seq or 0), 999)


def _with_attempt(doc: dict[str, Any], number: int, **changes: Any) -> list[dict[str, Any]]:
    return [{**a, **changes} if a["number"] == number else a for a in doc["attempts"]]


Doc = dict[str, Any]


def _submitted(doc: Doc | None, rec: Recorded, event: RunSubmitted) -> Doc:
    return {
        "id": rec.aggregate,
        "definition": event.definition,
        "definition_id": event.definition_id,
        "definition_version": event.definition_version,
        "cluster": event.cluster,
        "status": PENDING,
        "reason": RECENTLY_SUBMITTED,
        "exit_code": None,
        "message": "",
        "submitted_at": rec.time,
        "finished_at": None,
        "attempt": 1,
        "attempts": [],
        "job": event.job,
        "idempotency_key": event.idempotency_key,
        "logical_date": event.logical_date,
        "workflow_run": event.workflow_run,
        "task": event.task,
        "tags": list(event.tags),
        "not_before": None,
        "retry_rule": None,  # the index of the retry rule that last decided (to retry, or EXIT)
        "order": order_score(rec.position),
        "updated_at": rec.time,
        # Beside the attempts, not in them: the attempt objects of `status --json` have fixed keys.
        "source_revisions": {},
        "result": None,
        "cause": None,  # what submitted it, when not a person: a trigger, a manual fire, a backfill
        "values": None,  # what the run published for its downstream (``RunValuesPublished``)
        # An array job's parent: its size, the counts of its children that ended, and which (a redelivered
        # end is noted once); its children name it and their index.
        "array": None if event.array_size is None else _new_array(event),
        "array_parent": event.array_parent,
        "array_index": event.array_index,
    }


def _new_array(event: RunSubmitted) -> Doc:
    """An array parent's bookkeeping: the children that ended (and which did not succeed), and for a for-each
    task's run its window and the children carried from the round it repairs; for ``N_TO_N`` its upstream."""
    array: Doc = {"size": event.array_size, "counts": {}, "ended": [], "failed": []}
    if event.for_each is not None:
        array.update(concurrency=event.for_each["concurrency"], carried=[])
    if event.n_to_n:
        array["upstream"] = list(event.n_to_n)
    return array


def _for_each_carried(doc: Doc, rec: Recorded, event: RunForEachCarried) -> Doc:
    counts = dict(doc["array"]["counts"])
    counts[SUCCEEDED] = counts.get(SUCCEEDED, 0) + len(event.indexes)
    ended = [*doc["array"]["ended"], *event.indexes]
    array = {**doc["array"], "counts": counts, "ended": ended, "carried": [*doc["array"]["carried"], *event.indexes]}
    return {**doc, "array": array, "updated_at": rec.time}


def _array_expanded(doc: Doc, rec: Recorded, event: RunArrayExpanded) -> Doc:
    return {**doc, "status": RUNNING, "reason": None, "updated_at": rec.time}


def _array_children_ended(doc: Doc, rec: Recorded, event: RunArrayChildrenEnded) -> Doc:
    counts = dict(doc["array"]["counts"])
    for status in event.statuses:
        counts[status] = counts.get(status, 0) + 1
    failed = [i for i, status in zip(event.indexes, event.statuses, strict=True) if status != SUCCEEDED]
    array = {
        **doc["array"],
        "counts": counts,
        "ended": [*doc["array"]["ended"], *event.indexes],
        "failed": [*doc["array"].get("failed", ()), *failed],
    }
    return {**doc, "array": array, "updated_at": rec.time}


def _queued(doc: Doc, rec: Recorded, event: RunQueued) -> Doc:
    return {**doc, "status": PENDING, "reason": IN_QUEUE, "attempt": event.attempt, "updated_at": rec.time}


def _waiting(doc: Doc, rec: Recorded, event: RunWaiting) -> Doc:
    return {**doc, "status": PENDING, "reason": event.reason, "updated_at": rec.time}


def _started(doc: Doc, rec: Recorded, event: RunStarted) -> Doc:
    attempt = {
        "number": event.attempt,
        "status": RUNNING,
        "reason": None,
        "exit_code": None,
        "worker": event.worker,
        "started_at": rec.time,
        "finished_at": None,
    }
    attempts = [*doc["attempts"], attempt]
    started = {
        **doc,
        "status": RUNNING,
        "reason": None,
        "attempt": event.attempt,
        "attempts": attempts,
        "updated_at": rec.time,
    }
    if event.source_revision is not None:
        started["source_revisions"] = {**doc["source_revisions"], str(event.attempt): event.source_revision}
    return started


def _attempt_failed(doc: Doc, rec: Recorded, event: RunAttemptFailed) -> Doc:
    attempts = _with_attempt(
        doc, event.attempt, status=FAILED, reason=event.reason, exit_code=event.exit_code, finished_at=rec.time
    )
    return {**doc, "attempts": attempts, "exit_code": event.exit_code, "message": event.message, "updated_at": rec.time}


def _retry_scheduled(doc: Doc, rec: Recorded, event: RunRetryScheduled) -> Doc:
    return {
        **doc,
        "status": PENDING,
        "reason": WAITING_TO_RETRY,
        "attempt": event.attempt,
        "not_before": event.not_before,
        "retry_rule": event.rule,
        "updated_at": rec.time,
    }


def _succeeded(doc: Doc, rec: Recorded, event: RunSucceeded) -> Doc:
    attempts = _with_attempt(doc, event.attempt, status=SUCCEEDED, exit_code=0, finished_at=rec.time)
    return {
        **doc,
        "status": SUCCEEDED,
        "reason": None,
        "exit_code": 0,
        "finished_at": rec.time,
        "attempts": attempts,
        "result": event.result,
        "updated_at": rec.time,
    }


def _values_published(doc: Doc, rec: Recorded, event: RunValuesPublished) -> Doc:
    return {**doc, "values": event.values, "updated_at": rec.time}


def _failed(doc: Doc, rec: Recorded, event: RunFailed) -> Doc:
    return {
        **doc,
        "status": FAILED,
        "reason": event.reason,
        "exit_code": event.exit_code,
        "message": event.message,
        "finished_at": rec.time,
        "retry_rule": event.rule,
        "updated_at": rec.time,
    }


def _cancelled(doc: Doc, rec: Recorded, event: RunCancelled) -> Doc:
    attempts = [
        {**a, "status": CANCELLED, "reason": CANCELLED_BY_USER, "finished_at": rec.time}
        if a["status"] == RUNNING
        else a
        for a in doc["attempts"]
    ]
    return {
        **doc,
        "status": CANCELLED,
        "reason": event.reason,
        "finished_at": rec.time,
        "attempts": attempts,
        "updated_at": rec.time,
    }


def _caused(doc: Doc, rec: Recorded, event: RunCauseRecorded) -> Doc:
    cause: dict[str, Any] = {"reason": event.reason, "source": event.source}
    if event.datasets:
        cause["datasets"] = list(event.datasets)
    if event.files:
        cause["files"] = list(event.files)
    return {**doc, "cause": cause, "updated_at": rec.time}


# One handler per event type, chosen by the type's name: replay folds hundreds of thousands of events.
_HANDLERS: dict[str, Callable[[Any, Recorded, Any], Doc]] = {
    "RunSubmitted": _submitted,
    "RunQueued": _queued,
    "RunWaiting": _waiting,
    "RunStarted": _started,
    "RunAttemptFailed": _attempt_failed,
    "RunRetryScheduled": _retry_scheduled,
    "RunSucceeded": _succeeded,
    "RunValuesPublished": _values_published,
    "RunFailed": _failed,
    "RunCancelled": _cancelled,
    "RunCauseRecorded": _caused,
    "RunArrayExpanded": _array_expanded,
    "RunArrayChildrenEnded": _array_children_ended,
    "RunForEachCarried": _for_each_carried,
}


def apply_run(doc: Doc | None, rec: Recorded) -> Doc | None:
    """Fold one run event into the run's document; the only code that changes a run.

    Pure: the document passed in is never modified; a changed run is a new document.
    """
    handler = _HANDLERS.get(rec.type)
    if handler is None or (doc is None and handler is not _submitted):
        return doc
    return handler(doc, rec, rec.event)


def job_title(job: Mapping[str, Any] | None, key: str = "title") -> str | None:
    """A title the job carries (``title``: its task's or definition's, ``workflow_title``: its workflow's).

    Only a DataOS file's entries have titles, so the key is there only when one was given; a condition
    task has no job.
    """
    return None if job is None else job.get(key)


def array_view(array: dict[str, Any], counts: dict[str, int] | None = None) -> dict[str, Any]:
    """An array parent's ``array`` as ``status --json`` shows it: its size and its children by state; for a
    for-each task's run, ``forEach``: its window and how many children a repair carried from before."""
    view: dict[str, Any] = {"size": array["size"], "counts": dict(array["counts"]) if counts is None else counts}
    if "concurrency" in array:
        view["forEach"] = {"concurrency": array["concurrency"], "carried": len(array["carried"])}
    return view


def public_view(doc: dict[str, Any]) -> dict[str, Any]:
    """The run as ``status --json`` shows it."""
    # ``.get``: a live read model folded before a key existed lacks it until ``replay --rebuild``.
    view = {key: doc.get(key) for key in PUBLIC_KEYS}
    if view["array"] is not None:
        view["array"] = array_view(view["array"])
    job = doc.get("job")  # a cold-tier summary may have none
    view["title"], view["workflow_title"] = job_title(job), job_title(job, "workflow_title")
    return view


def ensure_not_terminal(doc: dict[str, Any]) -> None:
    if is_terminal(doc):
        reason = f" ({doc['reason']})" if doc.get("reason") else ""
        raise AlreadyTerminal(f"run {doc['id']} already ended: {doc['status']}{reason}", doc["status"])


def decide_cancel(doc: dict[str, Any]) -> list[Event]:
    """Cancel a run that has not ended; a finished one is refused with its state."""
    ensure_not_terminal(doc)
    return [RunCancelled(reason=CANCELLED_BY_USER, attempt=doc["attempt"])]


def decide_failure(
    doc: dict[str, Any],
    attempt: int,
    reason: str,
    exit_code: int | None,
    message: str,
    now: datetime,
    log_matches: tuple[int, ...] = (),
) -> list[Event]:
    """A failed attempt, then a retry after the strategy's delay or the run's failure.

    The strategy's ``rules`` are asked first (first match wins): ``EXIT`` ends the run now, ``RETRY`` retries
    while attempts remain (a timeout too); with no rule matching, a timeout retries only with
    ``retryOnTimeout``. ``log_matches`` is what the worker found in the output (see ``matching_rule``).
    """
    strategy = doc["job"]["retryStrategy"]
    failed = RunAttemptFailed(
        attempt=attempt, reason=reason, exit_code=exit_code, message=message, log_matches=log_matches
    )
    rule = matching_rule(strategy.get("rules", ()), reason, exit_code, log_matches)  # absent: defined without
    if rule is None:
        retryable = reason != TIMEOUT or strategy["retryOnTimeout"]
    else:
        retryable = strategy["rules"][rule]["action"] == RETRY
    if retryable and attempt < 1 + strategy["numRetries"]:
        delay = retry_delay_minutes(strategy, doc["id"], attempt)
        not_before = format_utc(now + timedelta(minutes=delay))
        return [failed, RunRetryScheduled(attempt=attempt + 1, not_before=not_before, delay_minutes=delay, rule=rule)]
    if rule is not None and not retryable:
        message = f"{message}; not retried: retryStrategy.rules[{rule}] says EXIT"
    return [failed, RunFailed(attempt=attempt, reason=reason, exit_code=exit_code, message=message, rule=rule)]
