"""The one function RQ runs: claim an attempt, run its job as a child, record the outcome."""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import redis
import structlog
from rq import get_current_job

from queue_core.connection import connect
from queue_core.events import utc_now_iso
from queue_core.keys import Keys
from queue_core.leases import Leases
from queue_core.lifecycle import Claim, RunLifecycle
from queue_core.logging import configure_logging
from queue_core.runlog import RunLog
from queue_core.runs import NON_ZERO_EXIT, SOURCE_UNAVAILABLE, TIMEOUT
from queue_core.settings import Settings
from queue_core.store import EventStore

from .child import ChildResult, Supervision, run_child
from .sources import Materialized, SourceError, materialize

__all__ = ["run_attempt"]

log = structlog.get_logger("jobledger.worker")
UNSUPPORTED = "UnsupportedJobType"


@dataclass(frozen=True)
class _Context:
    settings: Settings
    store: EventStore
    lifecycle: RunLifecycle
    leases: Leases
    run_log: RunLog


@lru_cache(maxsize=4)
def _context_for(connection: redis.Redis) -> _Context:
    configure_logging()
    settings = Settings.from_env()
    keys = Keys()
    store = EventStore(connection, keys)
    return _Context(settings, store, RunLifecycle(store), Leases(connection, keys), RunLog(connection, keys))


def _context() -> _Context:
    job = get_current_job()
    connection = job.connection if job is not None else connect(Settings.from_env())
    return _context_for(connection)


def _worker_name() -> str:
    job = get_current_job()
    name = getattr(job, "worker_name", None) if job is not None else None
    return name or f"{socket.gethostname()}.{os.getpid()}"


def _argv(job: dict[str, Any], source: Materialized) -> list[str]:
    import shlex

    args = shlex.split(job["args"])
    if job["type"] == "PYTHON":
        return [sys.executable, str(source.entry), *args]
    return ["bash", str(source.entry), *args]


def _env(run_id: str, attempt: int, job: dict[str, Any]) -> dict[str, str]:
    env = {**os.environ, **job["envVars"]}
    env.update(JOBLEDGER_RUN_ID=run_id, JOBLEDGER_ATTEMPT=str(attempt), PYTHONUNBUFFERED="1")
    return env


def run_attempt(run_id: str, attempt: int) -> dict[str, Any]:
    """Run one attempt of one run; a second delivery of the same attempt does nothing."""
    ctx = _context()
    bound = log.bind(run_id=run_id, attempt=attempt)
    claim = ctx.lifecycle.claim(run_id, attempt, _worker_name(), socket.gethostname(), os.getpid())
    if claim is None:
        bound.info("attempt not claimed: already taken, or the run moved on")
        return {"claimed": False}
    bound = bound.bind(definition=claim.run["definition"])
    ctx.leases.hold(run_id, attempt, _worker_name(), ctx.settings.lease_seconds)
    try:
        outcome = _execute(ctx, claim)
    finally:
        ctx.leases.release(run_id, attempt)
    bound.info("attempt ended", outcome=outcome)
    return {"claimed": True, "outcome": outcome}


def _note(ctx: _Context, claim: Claim, text: str) -> None:
    ctx.run_log.write(claim.run["id"], claim.attempt, [(utc_now_iso(), "jobledger", text)])


def _execute(ctx: _Context, claim: Claim) -> str:
    run_id, job = claim.run["id"], claim.run["job"]
    if job["type"] == "SQL":
        message = "SQL jobs are not supported by this worker yet"
        _note(ctx, claim, message)
        return _record(ctx, claim, ChildResult(exit_code=None), UNSUPPORTED, message)
    try:
        source = materialize(ctx.settings.workspace, job)
    except SourceError as exc:
        _note(ctx, claim, f"source unavailable: {exc}")
        return _record(ctx, claim, ChildResult(exit_code=None), SOURCE_UNAVAILABLE, str(exc))
    timeout_seconds = float(job["timeout"]) * 60
    supervision = Supervision(
        timeout_seconds=timeout_seconds,
        kill_grace_seconds=ctx.settings.kill_grace_seconds,
        should_stop=lambda: ctx.store.version(run_id) != claim.version,
        stop_poll_seconds=ctx.settings.cancel_poll_seconds,
        renew=lambda: ctx.leases.hold(run_id, claim.attempt, _worker_name(), ctx.settings.lease_seconds),
        renew_seconds=ctx.settings.lease_renew_seconds,
    )
    result = run_child(
        _argv(job, source),
        source.cwd,
        _env(run_id, claim.attempt, job),
        lambda lines: ctx.run_log.write(run_id, claim.attempt, lines),
        supervision,
    )
    if result.stopped:
        return "stopped: the run was cancelled or declared lost"
    if result.timed_out:
        message = f"timeout after {timeout_seconds:g}s"
        _note(ctx, claim, message)
        return _record(ctx, claim, result, TIMEOUT, message)
    if result.exit_code == 0:
        if not ctx.lifecycle.succeed(claim):
            log.warning("late outcome refused: the run moved on", run_id=run_id, attempt=claim.attempt)
            return "late"
        return "succeeded"
    detail = f"killed by signal {result.signal}" if result.signal else f"exit code {result.exit_code}"
    return _record(ctx, claim, result, NON_ZERO_EXIT, detail)


def _record(ctx: _Context, claim: Claim, result: ChildResult, reason: str, message: str) -> str:
    if not ctx.lifecycle.fail(claim, reason, result.exit_code, message):
        log.warning("late outcome refused: the run moved on", run_id=claim.run["id"], attempt=claim.attempt)
        return "late"
    return f"failed: {reason}"
