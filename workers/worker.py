"""The fleet's RQ worker class: no work-horse fork (the job already runs in a child), JSON entry jobs only."""

from __future__ import annotations

from typing import Any

from rq.worker import SimpleWorker

from .serializer import JobSerializer

__all__ = ["AttemptWorker"]


class AttemptWorker(SimpleWorker):
    """``rq worker -w workers.worker.AttemptWorker``: always uses jobledger's refusing serializer.

    An attempt already runs its job in a supervised child process group, so forking a
    work-horse per job as RQ's default worker does would only cost a second fork. A payload
    the serializer refuses fails in RQ's own failure path (FailedJobRegistry) without running.
    Job descriptions are not logged: a hostile job's description is whatever its author wrote.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["serializer"] = JobSerializer
        kwargs["log_job_description"] = False
        super().__init__(*args, **kwargs)
