"""The RQ serializer of jobledger's fleet: JSON only, and only jobledger's own entry function."""

from __future__ import annotations

from typing import Any

import orjson

from queue_core.errors import JobledgerError

__all__ = ["CHUNK_FUNCTION", "ENTRY_FUNCTION", "ENTRY_FUNCTIONS", "MAX_CHUNK", "JobSerializer", "RefusedJob"]

ENTRY_FUNCTION = "workers.attempt.run_attempt"
CHUNK_FUNCTION = "workers.chunk.run_chunk"  # consecutive children of one array job, one after the other
ENTRY_FUNCTIONS = (ENTRY_FUNCTION, CHUNK_FUNCTION)
MAX_CHUNK = 100  # run ids in one chunk job at most


class RefusedJob(JobledgerError, ValueError):  # a ValueError too, as an undecodable payload is to its callers
    """Raised when an RQ payload is not JSON or names a callable other than jobledger's entry function."""


class JobSerializer:
    """``rq worker --serializer workers.serializer.JobSerializer``: refuses pickles and foreign callables.

    RQ uses one serializer for a job's data (``[func, instance, args, kwargs]``), its meta and its
    result; only the data is a list, so every list is checked as job data.
    """

    @staticmethod
    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

    @staticmethod
    def loads(data: bytes) -> Any:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            # Never echo the payload: it may be hostile, or carry secrets.
            raise RefusedJob(f"refused RQ payload: not JSON ({len(data)} bytes; pickles are never loaded)") from None
        if isinstance(value, list):
            check_job_data(value)
        return value


def check_job_data(value: list[Any]) -> None:
    """Refuse job data that does not call an entry function with its arguments: a run id (the chunk function:
    a list of 1 to ``MAX_CHUNK`` run ids) and an attempt number."""
    if len(value) != 4:
        raise RefusedJob("refused RQ job: malformed job data (rejected_callable)")
    func, instance, args, kwargs = value
    if func not in ENTRY_FUNCTIONS or instance is not None:
        shown = func if isinstance(func, str) and len(func) <= 100 else "<not shown>"
        raise RefusedJob(f"refused RQ job: callable {shown!r} is not {ENTRY_FUNCTION} (rejected_callable)")
    if not isinstance(args, list) or len(args) != 2 or not isinstance(args[1], int) or kwargs not in ({}, None):
        raise RefusedJob("refused RQ job: arguments are not (run_id, attempt) (rejected_callable)")
    if func == ENTRY_FUNCTION and not isinstance(args[0], str):
        raise RefusedJob("refused RQ job: arguments are not (run_id, attempt) (rejected_callable)")
    if func == CHUNK_FUNCTION and not (
        isinstance(args[0], list) and 0 < len(args[0]) <= MAX_CHUNK and all(isinstance(x, str) for x in args[0])
    ):
        raise RefusedJob("refused RQ job: arguments are not (run_ids, attempt) (rejected_callable)")
