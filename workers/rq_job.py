"""The fleet's RQ job class: it runs jobledger's entry function and nothing else a job hash names.

RQ imports and calls whatever callable names a job hash carries: the job's function, its success, failure
and stopped callbacks (the failure callback even for a job whose data could not be decoded, and for an
abandoned job found by the worker's registry upkeep), and it posts to the hash's webhooks and enqueues
the jobs in its dependents set. Anyone who can write to the store could name any importable function.
This class never imports a callable by name, and ``refusal`` says why a job must not run at all.
"""

from __future__ import annotations

from typing import Any

from rq.job import Job

from workers.serializer import CHUNK_FUNCTION, ENTRY_FUNCTION, ENTRY_FUNCTIONS, RefusedJob

__all__ = ["FleetJob", "refusal"]


class FleetJob(Job):
    """A job of the fleet: its function is ``run_attempt`` (or ``run_chunk``, an array job's children one after
    the other) or it has none; it has no callbacks nor webhooks."""

    @property
    def func(self) -> Any:
        if self.func_name not in ENTRY_FUNCTIONS or self.instance is not None:
            raise RefusedJob(f"refused RQ job: its callable is not {ENTRY_FUNCTION} (rejected_callable)")
        if self.func_name == CHUNK_FUNCTION:
            from workers.chunk import run_chunk

            return run_chunk
        from workers.attempt import run_attempt

        return run_attempt

    @property
    def success_callback(self) -> None:
        return None

    @property
    def failure_callback(self) -> None:
        return None

    @property
    def stopped_callback(self) -> None:
        return None

    def execute_success_callback(self, *args: Any, **kwargs: Any) -> None:
        return None

    def execute_failure_callback(self, *args: Any, **kwargs: Any) -> None:
        return None

    def execute_stopped_callback(self, *args: Any, **kwargs: Any) -> None:
        return None

    def send_webhooks(self, *args: Any, **kwargs: Any) -> None:
        return None


def refusal(job: Job) -> str | None:
    """Why ``job`` must not run (one line, no payload shown), or None for a job the dispatcher could have made."""
    named = [
        kind
        for kind, name in (
            ("success", job._success_callback_name),
            ("failure", job._failure_callback_name),
            ("stopped", job._stopped_callback_name),
        )
        if name
    ]
    if named:
        return f"it names {'/'.join(named)} callbacks (rejected_callable)"
    if job._dependency_ids:
        return "it depends on other RQ jobs (rejected_callable)"
    if job.connection.exists(job.dependents_key):
        return "it has dependent RQ jobs (rejected_callable)"
    if job.webhooks or job.connection.hget(job.key, "webhooks"):  # RQ drops ones it cannot parse: still refused
        return "it carries webhooks (rejected_callable)"
    try:
        func_name, instance = job.func_name, job.instance
    except Exception as exc:  # RQ wraps the serializer's refusal in its DeserializationError
        cause = exc.__cause__
        return str(cause) if isinstance(cause, RefusedJob) else "its data cannot be decoded (rejected_callable)"
    if func_name not in ENTRY_FUNCTIONS or instance is not None:
        return f"its callable is not {ENTRY_FUNCTION} (rejected_callable)"
    return None
