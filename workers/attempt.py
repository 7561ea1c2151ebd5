"""The one function RQ runs: claim an attempt, run its job as a child, record the outcome."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import redis
import structlog
from rq import get_current_job

from queue_core.connection import connect
from queue_core.depots import get_depot
from queue_core.documents import load_document
from queue_core.errors import InvalidInput, NotFound
from queue_core.events import utc_now_iso
from queue_core.keys import Keys
from queue_core.leases import Leases
from queue_core.lifecycle import Claim, RunLifecycle
from queue_core.lineage import written_events
from queue_core.logging import configure_logging
from queue_core.masking import Masker, masking
from queue_core.pipeline import check_depots, normalize_pipeline
from queue_core.resources import ResourceStore
from queue_core.runlog import RunLog
from queue_core.runs import NON_ZERO_EXIT, SOURCE_UNAVAILABLE, TIMEOUT
from queue_core.secrets import SecretStore, secret_refs
from queue_core.settings import Settings
from queue_core.store import EventStore

from .child import ChildResult, Supervision, run_child
from .sources import Materialized, SourceContext, SourceError, materialize

__all__ = ["run_attempt"]

log = structlog.get_logger("jobledger.worker")
UNSUPPORTED = "UnsupportedJobType"
SQL_RUNNER = Path(__file__).with_name("sql_runner.py")  # run by path: see the runner's imports


@dataclass(frozen=True)
class _Context:
    settings: Settings
    store: EventStore
    lifecycle: RunLifecycle
    leases: Leases
    run_log: RunLog
    secrets: SecretStore
    resources: ResourceStore


@lru_cache(maxsize=4)
def _context_for(connection: redis.Redis) -> _Context:
    configure_logging()
    settings = Settings.from_env()
    keys = Keys()
    store = EventStore(connection, keys)
    return _Context(
        settings,
        store,
        RunLifecycle(store),
        Leases(connection, keys),
        RunLog(connection, keys),
        SecretStore(store),
        ResourceStore(store, settings),
    )


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


def _env(run_id: str, attempt: int, job: dict[str, Any], secrets: Mapping[str, str]) -> dict[str, str]:
    variables = {k: secrets[v["secret"]] if isinstance(v, dict) else v for k, v in job["envVars"].items()}
    env = {**os.environ, **variables}
    env.update(JOBLEDGER_RUN_ID=run_id, JOBLEDGER_ATTEMPT=str(attempt), PYTHONUNBUFFERED="1")
    return env


class AttemptCrashed(Exception):
    """Raised in place of an unexpected error, with secret values masked in its message."""


def run_attempt(run_id: str, attempt: int) -> dict[str, Any]:
    """Run one attempt of one run; a second delivery of the same attempt runs no job code.

    The source is materialized after a look at the run and before the claim, so ``RunStarted``
    records the revision run; a source that cannot be had is claimed and failed ``SourceUnavailable``.
    """
    ctx = _context()
    bound = log.bind(run_id=run_id, attempt=attempt)
    seen = ctx.lifecycle.claimable(run_id, attempt)
    if seen is None:
        bound.info("attempt not claimed: already taken, or the run moved on")
        return {"claimed": False}
    run = seen[0]
    job = run["job"]
    problem: str | None = None
    try:
        secrets = ctx.secrets.resolve(secret_refs(job))
    except NotFound as exc:
        secrets, problem = {}, str(exc)
    # One folder per delivery: a duplicate delivery on the same machine must not touch the first's files.
    (ctx.settings.home / "runs").mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{run_id}-{attempt}-", dir=ctx.settings.home / "runs"))
    with masking(secrets.values()) as masker:
        try:
            source, failure = (None, problem) if problem else _prepare(ctx, job, scratch, secrets)
            claim = ctx.lifecycle.claim(
                run_id,
                attempt,
                _worker_name(),
                socket.gethostname(),
                os.getpid(),
                source_revision=source.revision if source else None,
                seen=seen,
            )
            if claim is None:
                bound.info("attempt not claimed: already taken, or the run moved on")
                return {"claimed": False}
            bound = bound.bind(definition=claim.run["definition"])
            ctx.leases.hold(run_id, attempt, _worker_name(), ctx.settings.lease_seconds)
            try:
                if failure is not None:
                    message = masker.mask(failure)
                    _note(ctx, claim, masker, f"source unavailable: {message}")
                    outcome = _record(ctx, claim, ChildResult(exit_code=None), SOURCE_UNAVAILABLE, message)
                else:
                    outcome = _execute(ctx, claim, source, secrets, masker, scratch)
            finally:
                ctx.leases.release(run_id, attempt)
            bound.info("attempt ended", outcome=outcome)
            return {"claimed": True, "outcome": outcome}
        except Exception as exc:
            # RQ logs what escapes after the masking ends: log it masked here, and pass on no value.
            bound.exception("attempt crashed")
            raise AttemptCrashed(masker.mask(f"{type(exc).__name__}: {exc}")) from None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _prepare(
    ctx: _Context, job: dict[str, Any], scratch: Path, secrets: Mapping[str, str]
) -> tuple[Materialized | None, str | None]:
    """The materialized source, or why it cannot be had; SQL jobs have nothing to materialize here."""
    if job["type"] == "SQL" and "pipeline" in job:
        return None, None
    context = SourceContext(
        workspace=ctx.settings.workspace,
        cache=ctx.settings.home / "cache",
        scratch=scratch / "source",
        secrets=secrets,
        resources=ctx.resources,
    )
    try:
        return materialize(context, job), None
    except SourceError as exc:
        return None, str(exc)
    except OSError as exc:
        return None, f"cannot prepare the source: {exc}"


def _note(ctx: _Context, claim: Claim, masker: Masker, text: str) -> None:
    ctx.run_log.write(claim.run["id"], claim.attempt, [(utc_now_iso(), "jobledger", masker.mask(text))])


def _pipeline_file(entry: Path) -> dict[str, Any]:
    """The pipeline in a YAML or JSON file: a ``stackSpec.job`` object, or ``{"job": ...}`` around one."""
    raw = load_document(entry)
    if isinstance(raw, dict) and set(raw) == {"job"}:
        raw = raw["job"]
    return normalize_pipeline(raw, entry.name)


def _sql_child(
    ctx: _Context, job: dict[str, Any], scratch: Path, source: Materialized | None
) -> tuple[list[str], Path] | str:
    """The runner's argv and its result file, with the depots resolved into the run folder; or why not."""
    try:
        pipeline = job["pipeline"] if source is None else _pipeline_file(source.entry)
        names = {x["dataset"]["depot"] for x in [*pipeline["inputs"], *pipeline["outputs"]]}
        depots = {name: get_depot(ctx.store, name) for name in sorted(names)}
        check_depots(pipeline, {name: depot["type"] for name, depot in depots.items()})
    except (NotFound, InvalidInput) as exc:
        return str(exc)
    run_dir = scratch / "sql"
    run_dir.mkdir()
    spec = {
        "pipeline": pipeline,
        "depots": depots,
        "run_dir": str(run_dir),
        "result_path": str(run_dir / "result.json"),
    }
    spec_path = run_dir / "spec.json"
    spec_path.write_text(json.dumps(spec))
    return [sys.executable, str(SQL_RUNNER), str(spec_path)], run_dir / "result.json"


def _sql_result(path: Path | None) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text()) if path is not None else None
    except (OSError, ValueError):
        return None


def _execute(
    ctx: _Context,
    claim: Claim,
    source: Materialized | None,
    secrets: Mapping[str, str],
    masker: Masker,
    scratch: Path,
) -> str:
    run_id, job = claim.run["id"], claim.run["job"]
    result_path: Path | None = None
    if job["type"] == "SQL":
        child = _sql_child(ctx, job, scratch, source)
        if isinstance(child, str):
            # A pipeline file that does not validate, or a depot gone since define: the source is unusable.
            _note(ctx, claim, masker, child)
            return _record(ctx, claim, ChildResult(exit_code=None), SOURCE_UNAVAILABLE, child)
        argv, result_path, cwd = child[0], child[1], scratch / "sql"
    elif source is None:
        message = f"{job['type']} jobs need a source"
        _note(ctx, claim, masker, message)
        return _record(ctx, claim, ChildResult(exit_code=None), UNSUPPORTED, message)
    else:
        argv, cwd = _argv(job, source), source.cwd
        if source.revision is not None:
            _note(ctx, claim, masker, f"source {job['source']['type']} at {source.revision}")
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
        argv,
        cwd,
        _env(run_id, claim.attempt, job, secrets),
        lambda lines: ctx.run_log.write(run_id, claim.attempt, [(t, s, masker.mask(line)) for t, s, line in lines]),
        supervision,
    )
    if result.stopped:
        return "stopped: the run was cancelled or declared lost"
    if result.timed_out:
        message = f"timeout after {timeout_seconds:g}s"
        _note(ctx, claim, masker, message)
        return _record(ctx, claim, result, TIMEOUT, message)
    sql_result = _sql_result(result_path)
    if result.exit_code == 0:
        if sql_result is not None:
            _note(ctx, claim, masker, json.dumps(sql_result, separators=(",", ":")))
        written = written_events(sql_result, claim.attempt) if sql_result is not None else []
        if not ctx.lifecycle.succeed(claim, sql_result, written):
            log.warning("late outcome refused: the run moved on", run_id=run_id, attempt=claim.attempt)
            return "late"
        return "succeeded"
    detail = f"killed by signal {result.signal}" if result.signal else f"exit code {result.exit_code}"
    if sql_result is not None and sql_result.get("error"):
        detail = f"{detail}: {masker.mask(sql_result['error'])}"
    return _record(ctx, claim, result, NON_ZERO_EXIT, detail)


def _record(ctx: _Context, claim: Claim, result: ChildResult, reason: str, message: str) -> str:
    if not ctx.lifecycle.fail(claim, reason, result.exit_code, message):
        log.warning("late outcome refused: the run moved on", run_id=claim.run["id"], attempt=claim.attempt)
        return "late"
    return f"failed: {reason}"
