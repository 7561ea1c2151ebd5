"""Putting attempts on RQ: the JSON job class, enqueue now or later (rq-scheduler), and where RQ holds one."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import redis
from rq.job import Job
from rq.queue import Queue
from rq_scheduler import Scheduler

from queue_core.keys import Keys
from queue_core.services.lifecycle import attempt_job_id
from queue_core.specs.run_control import DEFAULT_PRIORITY
from scheduler.priority_queue import PriorityQueue
from workers.serializer import ENTRY_FUNCTION, JobSerializer

__all__ = [
    "POPPED",
    "STARTED",
    "AttemptJob",
    "enqueue_attempt",
    "enqueue_first_attempts",
    "forget_popped",
    "schedule_attempt",
    "scheduler_for",
    "where_is",
    "where_many",
    "whole_second_after",
]

# RQ keeps nothing once an attempt ended: the log holds its outcome (and the run log its output). RQ deletes a
# job with a result TTL of 0 as soon as it finishes. A job RQ failed (its attempt crashed without recording an
# outcome, a store outage say) is kept an hour for whoever looks into it; the reconciler retries the attempt.
RESULT_TTL_SECONDS = 0
FAILURE_TTL_SECONDS = 3600
NO_RQ_TIMEOUT = -1  # the worker enforces each attempt's timeout itself, on the whole process group


class AttemptJob(Job):
    """An RQ job that is always JSON: rq-scheduler builds and fetches jobs without a serializer."""

    def __init__(self, id: str | None = None, connection: redis.Redis | None = None, serializer: Any = None) -> None:
        super().__init__(id=id, connection=connection, serializer=serializer or JobSerializer)


def _queue(connection: redis.Redis, cluster: str, priority: int | None = None) -> Queue:
    return PriorityQueue(
        cluster, connection=connection, serializer=JobSerializer, job_class=AttemptJob, priority=priority
    )


def enqueue_attempt(
    connection: redis.Redis,
    cluster: str,
    run_id: str,
    attempt: int,
    priority: int = DEFAULT_PRIORITY,
    pipeline: redis.client.Pipeline | None = None,
) -> None:
    """Put the attempt on its cluster's queue under its deterministic job id, in priority order (on
    ``pipeline``, when given: sent with its other commands)."""
    _queue(connection, cluster, priority).enqueue_call(
        func=ENTRY_FUNCTION,
        args=(run_id, attempt),
        job_id=attempt_job_id(run_id, attempt),
        timeout=NO_RQ_TIMEOUT,
        result_ttl=RESULT_TTL_SECONDS,
        failure_ttl=FAILURE_TTL_SECONDS,
        description=f"jobledger run {run_id} attempt {attempt}",
        pipeline=pipeline,
    )


ENQUEUE_CHUNK = 500  # jobs per pipeline: one round trip each


def enqueue_first_attempts(
    connection: redis.Redis, cluster: str, run_ids: list[str], priority: int = DEFAULT_PRIORITY
) -> None:
    """Put the first attempts of many runs (an array job's children) on their cluster's queue, a pipeline of
    ``ENQUEUE_CHUNK`` at a time (RQ's ``enqueue_many``), under the same deterministic job ids as one by one."""
    queue = _queue(connection, cluster, priority)
    for start in range(0, len(run_ids), ENQUEUE_CHUNK):
        datas = [
            Queue.prepare_data(
                ENTRY_FUNCTION,
                args=(run_id, 1),
                job_id=attempt_job_id(run_id, 1),
                timeout=NO_RQ_TIMEOUT,
                result_ttl=RESULT_TTL_SECONDS,
                failure_ttl=FAILURE_TTL_SECONDS,
                description=f"jobledger run {run_id} attempt 1",
            )
            for run_id in run_ids[start : start + ENQUEUE_CHUNK]
        ]
        with connection.pipeline() as pipe:
            queue.enqueue_many(datas, pipeline=pipe)
            pipe.execute()


def scheduler_for(connection: redis.Redis) -> Scheduler:
    return Scheduler(connection=connection, job_class=AttemptJob, queue_class=PriorityQueue, interval=1)


def schedule_attempt(
    connection: redis.Redis,
    cluster: str,
    run_id: str,
    attempt: int,
    when: datetime,
    priority: int = DEFAULT_PRIORITY,
) -> None:
    """Have rq-scheduler put the attempt on its queue at ``when``, never before it (idempotent per attempt); it
    goes in at ``priority``, noted on the job for the queue to find then."""
    job = scheduler_for(connection).enqueue_at(
        whole_second_after(when),
        ENTRY_FUNCTION,
        run_id,
        attempt,
        job_id=attempt_job_id(run_id, attempt),
        timeout=NO_RQ_TIMEOUT,
        job_result_ttl=RESULT_TTL_SECONDS,
        queue_name=cluster,
        job_description=f"jobledger run {run_id} attempt {attempt} (retry)",
    )
    keys = Keys()
    connection.hset(f"{keys.rq_job_prefix}{job.id}", keys.rq_job_priority_field, priority)


def whole_second_after(when: datetime) -> datetime:
    """``when``, or the next whole second after it: rq-scheduler keeps whole seconds and moves a job once the
    current whole second reaches its score, so a retry due at 10.7 s scored 10 would start 0.7 s early."""
    return when if when.microsecond == 0 else when.replace(microsecond=0) + timedelta(seconds=1)


STARTED, SCHEDULED, QUEUED, POPPED = "started", "scheduled", "queued", "popped"


def where_is(connection: redis.Redis, cluster: str, run_id: str, attempt: int) -> str | None:
    """Where RQ holds the attempt: ``started`` (a worker has it), ``scheduled``, ``queued``, or ``popped``
    (in the queue's intermediate list, between a worker's pop and its start); None when nowhere.
    """
    job_id = attempt_job_id(run_id, attempt)
    status: Any = connection.hget(AttemptJob.key_for(job_id), "status")
    if status is None:
        return None
    status_text = status.decode()
    if status_text == "started":
        return STARTED  # the attempt's lease says whether that worker is alive
    if status_text == "scheduled":
        return SCHEDULED if connection.zscore(Scheduler.scheduled_jobs_key, job_id) is not None else None
    if status_text == "queued":
        queue = _queue(connection, cluster)
        if connection.lpos(queue.key, job_id) is not None:
            return QUEUED
        return POPPED if connection.lpos(queue.intermediate_queue_key, job_id) is not None else None
    return None


def where_many(connection: redis.Redis, attempts: list[tuple[str, str, int]]) -> dict[tuple[str, int], str | None]:
    """``where_is`` for many (cluster, run id, attempt) at once: the statuses in one pipeline, each cluster's
    queue and intermediate list read once (not one LPOS per attempt, which over an array job's thousands of
    queued children is quadratic work for the store)."""
    pipe = connection.pipeline(transaction=False)
    for _, run_id, attempt in attempts:
        pipe.hget(AttemptJob.key_for(attempt_job_id(run_id, attempt)), "status")
    statuses: list[Any] = pipe.execute() if attempts else []
    listed: dict[str, tuple[set[bytes], set[bytes]]] = {}
    places: dict[tuple[str, int], str | None] = {}
    for (cluster, run_id, attempt), status in zip(attempts, statuses, strict=True):
        job_id = attempt_job_id(run_id, attempt)
        status_text = None if status is None else status.decode()
        if status_text == "started":
            places[(run_id, attempt)] = STARTED
        elif status_text == "scheduled":
            scheduled = connection.zscore(Scheduler.scheduled_jobs_key, job_id) is not None
            places[(run_id, attempt)] = SCHEDULED if scheduled else None
        elif status_text == "queued":
            if cluster not in listed:
                queue = _queue(connection, cluster)
                in_queue: Any = connection.lrange(queue.key, 0, -1)
                in_between: Any = connection.lrange(queue.intermediate_queue_key, 0, -1)
                listed[cluster] = (set(in_queue), set(in_between))
            queued, popped = listed[cluster]
            encoded = job_id.encode()
            places[(run_id, attempt)] = QUEUED if encoded in queued else POPPED if encoded in popped else None
        else:
            places[(run_id, attempt)] = None
    return places


def forget_popped(connection: redis.Redis, cluster: str, run_id: str, attempt: int) -> None:
    """Take the attempt out of its queue's intermediate list, where a worker that died after its pop left it."""
    connection.lrem(_queue(connection, cluster).intermediate_queue_key, 0, attempt_job_id(run_id, attempt))
