"""Putting attempts on RQ: the JSON job class, enqueue now or later (rq-scheduler), and where RQ holds one."""

from __future__ import annotations

import zlib
from datetime import datetime, timedelta
from typing import Any

import redis
from rq.job import Job
from rq.queue import Queue
from rq_scheduler import Scheduler

from queue_core.domain.arrays import child_id, parent_of
from queue_core.keys import Keys
from queue_core.services.lifecycle import attempt_job_id
from queue_core.specs.run_control import DEFAULT_PRIORITY
from scheduler.priority_queue import PriorityQueue
from workers.serializer import CHUNK_FUNCTION, ENTRY_FUNCTION, JobSerializer

__all__ = [
    "CHUNK_SIZE",
    "POPPED",
    "STARTED",
    "AttemptJob",
    "chunk_job_id",
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
# An array job's children go on RQ this many to a job (``workers.chunk``): aligned on their indexes, so that the
# reconciler finds a child's chunk from its id alone. 50 rather than 20: a chunk's sandbox and RQ job cost about
# 20 ms, a short child about 10 ms of a worker's time; a long child hands its siblings back after a second.
CHUNK_SIZE = 50
MIN_CHUNKED = 2 * CHUNK_SIZE  # fewer children of one array in the list: each on its own (small arrays spread out)


def chunk_job_id(run_id: str) -> str | None:
    """The RQ job id of the chunk that holds an array child's first attempt (None: not an array child)."""
    child = parent_of(run_id)
    if child is None:
        return None
    parent, index = child
    return f"{child_id(parent, index - index % CHUNK_SIZE)}-chunk"


def _chunks(run_ids: list[str]) -> list[list[str]]:
    """``run_ids`` grouped as they go on RQ: an array's children by aligned chunks of ``CHUNK_SIZE``, where the
    list holds the whole chunk (or the last chunk of a whole array) and ``MIN_CHUNKED`` of its children at least;
    any other run on its own."""
    groups: dict[tuple[str, int], dict[int, str]] = {}
    alone: list[list[str]] = []
    indexes: dict[str, set[int]] = {}  # each parent's children in the list
    for run_id in run_ids:
        child = parent_of(run_id)
        if child is None:
            alone.append([run_id])
            continue
        parent, index = child
        groups.setdefault((parent, index // CHUNK_SIZE), {})[index] = run_id
        indexes.setdefault(parent, set()).add(index)
    whole = {parent for parent, held in indexes.items() if len(held) == max(held) + 1}  # 0..max, all of them
    few = {parent for parent, held in indexes.items() if len(held) < MIN_CHUNKED}
    chunked: list[list[str]] = []
    for (parent, number), members in groups.items():
        first = number * CHUNK_SIZE
        held = sorted(members)
        complete = held == list(range(first, first + CHUNK_SIZE))
        last_of_whole = parent in whole and held == list(range(first, max(indexes[parent]) + 1))
        ordered = [members[index] for index in held]
        if (complete or last_of_whole) and parent not in few:
            chunked.append(ordered)
        else:
            alone.extend([run_id] for run_id in ordered)
    return chunked + alone


def enqueue_first_attempts(
    connection: redis.Redis, cluster: str, run_ids: list[str], priority: int = DEFAULT_PRIORITY
) -> None:
    """Put the first attempts of many runs (an array job's children) on their cluster's queue, a pipeline of
    ``ENQUEUE_CHUNK`` jobs at a time (RQ's ``enqueue_many``): an array's children ``CHUNK_SIZE`` to a job
    (``chunk_job_id``), any other run under the same deterministic job id as one by one."""
    queue = _queue(connection, cluster, priority)
    datas = [_first_attempts_data(group) for group in _chunks(run_ids)]
    for start in range(0, len(datas), ENQUEUE_CHUNK):
        with connection.pipeline() as pipe:
            queue.enqueue_many(datas[start : start + ENQUEUE_CHUNK], pipeline=pipe)
            pipe.execute()


def _first_attempts_data(group: list[str]) -> Any:
    """One RQ job's data: a run's first attempt on its own, or a chunk of an array's children."""
    first = group[0]
    alone = len(group) == 1
    return Queue.prepare_data(
        ENTRY_FUNCTION if alone else CHUNK_FUNCTION,
        args=(first if alone else group, 1),
        job_id=attempt_job_id(first, 1) if alone else chunk_job_id(first),
        timeout=NO_RQ_TIMEOUT,
        result_ttl=RESULT_TTL_SECONDS,
        failure_ttl=FAILURE_TTL_SECONDS,
        description=f"jobledger run {first} attempt 1" if alone else f"jobledger runs {first} to {group[-1]} attempt 1",
    )


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
    queued children is quadratic work for the store). An array child's first attempt that is no RQ job of its
    own is where the chunk holding it is (``chunk_job_id``)."""
    pipe = connection.pipeline(transaction=False)
    for _, run_id, attempt in attempts:
        pipe.hget(AttemptJob.key_for(attempt_job_id(run_id, attempt)), "status")
    statuses: list[Any] = pipe.execute() if attempts else []
    job_ids = [attempt_job_id(run_id, attempt) for _, run_id, attempt in attempts]
    chunks = _chunks_holding(connection, [a for a, status in zip(attempts, statuses, strict=True) if status is None])
    for k, (_, run_id, attempt) in enumerate(attempts):
        if (run_id, attempt) in chunks:
            job_ids[k], statuses[k] = chunks[(run_id, attempt)]
    listed: dict[str, tuple[set[bytes], set[bytes]]] = {}
    places: dict[tuple[str, int], str | None] = {}
    for (cluster, run_id, attempt), job_id, status in zip(attempts, job_ids, statuses, strict=True):
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


def _chunks_holding(connection: redis.Redis, attempts: list[tuple[str, str, int]]) -> dict[tuple[str, int], Any]:
    """For each array child's first attempt among ``attempts`` that an RQ chunk job holds: the chunk's job id
    and status, read in one round trip for all (a chunk whose data cannot be read holds nothing)."""
    wanted = {(run_id, attempt): chunk_job_id(run_id) for _, run_id, attempt in attempts if attempt == 1}
    chunk_ids = sorted({job_id for job_id in wanted.values() if job_id is not None})
    pipe = connection.pipeline(transaction=False)
    for job_id in chunk_ids:
        pipe.hmget(AttemptJob.key_for(job_id), "status", "data")
    replies: list[Any] = pipe.execute() if chunk_ids else []
    members: dict[str, tuple[set[str], bytes]] = {}
    for job_id, (status, data) in zip(chunk_ids, replies, strict=True):
        run_ids = _chunk_members(data)
        if status is not None and run_ids:
            members[job_id] = (run_ids, status)
    held: dict[tuple[str, int], Any] = {}
    for key, chunk in wanted.items():
        if chunk is not None and chunk in members and key[0] in members[chunk][0]:
            held[key] = (chunk, members[chunk][1])
    return held


def _chunk_members(data: bytes | None) -> set[str]:
    """The run ids in a chunk job's data (RQ compresses it); none when it is no chunk job the dispatcher made."""
    if data is None:
        return set()
    try:
        func, _, args, _ = JobSerializer.loads(zlib.decompress(data))
    except (ValueError, TypeError, zlib.error):  # RefusedJob is a ValueError
        return set()
    return set(args[0]) if func == CHUNK_FUNCTION else set()


def forget_popped(connection: redis.Redis, cluster: str, run_id: str, attempt: int) -> None:
    """Take the attempt out of its queue's intermediate list, where a worker that died after its pop left it (an
    array child's first attempt: the chunk that holds it, too)."""
    intermediate = _queue(connection, cluster).intermediate_queue_key
    connection.lrem(intermediate, 0, attempt_job_id(run_id, attempt))
    chunk = chunk_job_id(run_id) if attempt == 1 else None
    if chunk is not None:
        connection.lrem(intermediate, 0, chunk)
