"""The one function RQ runs: claim an attempt, run its job as a child, record the outcome."""

from __future__ import annotations

import json
import os
import signal
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

from queue_core.domain.lineage import written_events
from queue_core.domain.runs import (
    INTERNAL_ERROR,
    NON_ZERO_EXIT,
    SOURCE_UNAVAILABLE,
    TIMEOUT,
    UNDELIVERABLE,
    WORKER_LOST,
)
from queue_core.domain.secrets import secret_refs
from queue_core.errors import InvalidInput, JobledgerError, NotFound
from queue_core.eventlog.connection import connect, connect_like
from queue_core.eventlog.health import check_store
from queue_core.eventlog.leases import Leases
from queue_core.eventlog.runlog import RunLog
from queue_core.eventlog.store import EventStore
from queue_core.keys import Keys
from queue_core.logging import configure_logging
from queue_core.masking import Masker, masking
from queue_core.services.depots import get_depot
from queue_core.services.lifecycle import Claim, RunLifecycle
from queue_core.services.resources import ResourceStore
from queue_core.services.secrets import SecretStore
from queue_core.services.syncs import SyncStates
from queue_core.settings import Settings
from queue_core.specs.builtins import BUILTIN, DATA_SYNC, RUNNER_TYPES, builtin_sync
from queue_core.specs.documents import load_document
from queue_core.specs.engines import transpile_steps
from queue_core.specs.hive import hive_to_duckdb
from queue_core.specs.pipelines import MAX_SQL_CHARS, check_depots, is_script, normalize_pipeline
from queue_core.specs.preruns import scratch_pipeline
from queue_core.specs.task_values import VALUES_FILE_VARIABLE, values_from_sql_result
from queue_core.timefmt import utc_now
from workers.child import PDEATHSIG_PREFIX, ChildResult, Spawn, Supervision, run_child
from workers.chunk_sandbox import Seat
from workers.lease_keeper import LeaseKeeper, Stoppable
from workers.leftovers import SESSION_FILE, note_session
from workers.log_watch import LogWatch
from workers.outage import STORE_ERRORS, BufferedLines, away_tolerant
from workers.sandbox import SANDBOX_TMP, Sandbox, job_environment, sandbox_for
from workers.sources import Materialized, SourceContext, SourceError, materialize
from workers.sources.workspace import working_copy
from workers.spare import Spare, Spares
from workers.sync import generated_pipeline
from workers.trash import Trash
from workers.values_file import INVALID_VALUES, read_values, values_path

__all__ = ["AttemptCrashed", "deliver", "run_attempt", "worker_context", "worker_name"]

log = structlog.get_logger("jobledger.worker")
UNSUPPORTED = "UnsupportedJobType"
MAX_DELIVERIES = 5  # deliveries of one attempt that never got as far as its claim, before it is failed
MAX_MESSAGE_CHARS = 2000
COLD_SHUTDOWN = "the worker was shut down (cold shutdown) while the job ran; the job was killed"
SQL_RUNNER = Path(__file__).with_name("sql") / "runner.py"  # run by path: see the runner's imports
SPARK_RUNNER = Path(__file__).with_name("sql") / "spark_engine.py"  # engine: spark, run by path like the runner
# What of the worker's environment a Spark run gets besides the job's: where its master is, where Java is, its jars.
SPARK_VARIABLES = ("JOBLEDGER_SPARK_MASTER", "JAVA_HOME", "JOBLEDGER_SPARK_JARS")
APP_RUNNER = Path(__file__).with_name("external_app.py")  # EXTERNAL_APP jobs, run by path like the SQL runner
CLOUD_PREFIX = "AWS_"
VALUES_TOOL = Path(sys.executable).with_name("jobledger-values")  # installed beside Python by the package
CLOUD_SECRETS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


@dataclass(frozen=True)
class _Context:
    settings: Settings
    store: EventStore
    lifecycle: RunLifecycle
    leases: Leases
    run_log: RunLog
    secrets: SecretStore
    resources: ResourceStore
    sandbox: Sandbox
    spares: Spares
    trash: Trash
    syncs: SyncStates


@lru_cache(maxsize=4)
def _context_for(rq_connection: redis.Redis) -> _Context:
    configure_logging()
    settings = Settings.from_env()
    keys = Keys()
    # The store's own connection: jobledger's short time-out (RQ's waits minutes on a hung store),
    # and appends retried through an outage for as long as the worker's patience lasts.
    connection = connect_like(rq_connection, settings)
    store = EventStore(
        connection,
        keys,
        patience_seconds=settings.outage_patience_seconds,
        replicas=settings.replicas_to_wait,
        replica_wait_ms=settings.replica_wait_ms,
    )
    check_store(store, settings)  # the epoch: no attempt runs against a store that came back empty
    lifecycle = RunLifecycle(store)
    return _Context(
        settings,
        store,
        lifecycle,
        Leases(connection, keys),
        RunLog(connection, keys),
        SecretStore(store),
        ResourceStore(store, settings),
        sandbox := sandbox_for(settings),
        Spares(sandbox, settings.home / "runs"),
        Trash(),
        SyncStates(store, lifecycle),
    )


def worker_context() -> _Context:
    job = get_current_job()
    connection = job.connection if job is not None else connect(Settings.from_env())
    return _context_for(connection)


def worker_name() -> str:
    job = get_current_job()
    name = getattr(job, "worker_name", None) if job is not None else None
    return name or f"{socket.gethostname()}.{os.getpid()}"


def _argv(job: dict[str, Any], source: Materialized) -> list[str]:
    import shlex

    args = shlex.split(job["args"])
    if source.entry.suffix.lower() == ".jar":
        return ["java", "-jar", str(source.entry), *args]  # a jar resource, whatever the job's type
    if job["type"] == "PYTHON":
        return [sys.executable, str(source.entry), *args]
    return ["bash", str(source.entry), *args]


def _env(
    ctx: _Context,
    claim: Claim,
    secrets: Mapping[str, str],
    scratch: Path,
) -> dict[str, str]:
    """The job's environment: an allowlist of the worker's (see ``workers.sandbox``), its variables, its ids."""
    job = claim.run["job"]
    variables = {k: secrets[v["secret"]] if isinstance(v, dict) else v for k, v in job["envVars"].items()}
    variables.update(JOBLEDGER_RUN_ID=claim.run["id"], JOBLEDGER_ATTEMPT=str(claim.attempt))
    if claim.run.get("logical_date") is not None:
        variables["JOBLEDGER_LOGICAL_DATE"] = claim.run["logical_date"]
    if claim.run["array_index"] is not None:  # an array job's child
        variables["JOBLEDGER_ARRAY_INDEX"] = str(claim.run["array_index"])
    variables[VALUES_FILE_VARIABLE] = str(values_path(scratch))
    tmpdir = SANDBOX_TMP if ctx.sandbox.enabled else str(scratch / "tmp")
    env = job_environment(variables, scratch / "home", tmpdir)
    if VALUES_TOOL.exists():  # ``jobledger-values`` beside the worker's Python, on the job's PATH
        env["PATH"] = f"{VALUES_TOOL.parent}:{env['PATH']}"
    return env


@lru_cache(maxsize=1)
def _warm_runner() -> Any:
    from workers.sql.zygote import WarmRunner

    return WarmRunner(PDEATHSIG_PREFIX)


def _spawn_sql(argv: list[str], cwd: Path, env: dict[str, str]) -> Any:
    """The SQL runner forked from this worker's warm zygote (DuckDB imported once); None: start it afresh."""
    try:
        return _warm_runner().spawn(argv[2:], cwd, env)  # argv: python, sql/runner.py, spec
    except (OSError, EOFError, ValueError, KeyError) as exc:
        log.warning("warm SQL runner unavailable; starting the runner afresh", error=str(exc))
        return None


class AttemptCrashed(JobledgerError):
    """Raised out of an attempt in place of an unexpected error, with secret values masked in its message."""


def run_attempt(run_id: str, attempt: int) -> dict[str, Any]:
    """Run one attempt of one run; a second delivery of the same attempt runs no job code.

    The source is materialized after a look at the run and before the claim, so ``RunStarted``
    records the revision run; a source that cannot be had is claimed and failed ``SourceUnavailable``.
    """
    ctx = worker_context()
    bound = log.bind(run_id=run_id, attempt=attempt)
    seen = ctx.lifecycle.claimable(run_id, attempt)
    if seen is None:
        bound.info("attempt not claimed: already taken, or the run moved on")
        return {"claimed": False}
    # The lease from now on, not only from the claim: RQ calls the job started already, and the reconciler
    # takes an attempt back from a started job whose worker holds no lease (it died before its claim).
    # Never released on the way out unclaimed: another delivery of the same attempt may hold the same key.
    holder = worker_name()
    deliveries = ctx.leases.take(run_id, attempt, holder, ctx.settings.lease_seconds)
    # Renewed from now until the attempt ends, through the source fetch too: a fetch longer than the lease made
    # the reconciler take the attempt for lost and deliver it again.
    hold = away_tolerant(
        lambda: ctx.leases.hold(run_id, attempt, holder, ctx.settings.lease_seconds), None, "lease renewal"
    )
    keeper = LeaseKeeper(hold, ctx.settings.lease_renew_seconds).start()
    try:
        return deliver(ctx, run_id, attempt, seen, deliveries, keeper, bound)
    finally:
        keeper.stop()


def deliver(
    ctx: _Context,
    run_id: str,
    attempt: int,
    seen: tuple[dict[str, Any], int],
    deliveries: int,
    keeper: Stoppable,
    bound: Any,
    release: bool = True,
) -> dict[str, Any]:
    """The delivered attempt, its lease kept alive by ``keeper`` (taken before, renewed since): prepared,
    claimed, run and recorded. ``release``: the lease is released at the end (an array chunk releases those
    of its children together instead)."""
    job = seen[0]["job"]
    # What stops the attempt before its job can start: it is still claimed, and ended with the reason, so the
    # retry strategy applies and no run waits "In queue" for a delivery that can never get further.
    problem: tuple[str, str] | None = None
    if deliveries > MAX_DELIVERIES:
        problem = (
            UNDELIVERABLE,
            f"delivered {deliveries} times without starting: a worker died preparing it each time",
        )
    secrets: Mapping[str, str] = {}
    if problem is None:
        try:
            secrets = ctx.secrets.resolve(secret_refs(job))
        except JobledgerError as exc:  # a secret not set, a key this machine lacks
            problem = (SOURCE_UNAVAILABLE, str(exc))
    spare, scratch = None, None
    if problem is None:
        try:
            spare, scratch = _folder(ctx, run_id, attempt, job)
        except OSError as exc:
            problem = (INTERNAL_ERROR, f"cannot make the attempt's folder: {exc}")
    claim: Claim | None = None
    with masking(secrets.values()) as masker:
        try:
            source = None
            if problem is None and scratch is not None:
                source, failure = _prepare(ctx, job, scratch, secrets, _pinned(seen[0]))
                problem = (SOURCE_UNAVAILABLE, failure) if failure is not None else None
            claim = ctx.lifecycle.claim(
                run_id,
                attempt,
                worker_name(),
                socket.gethostname(),
                os.getpid(),
                source_revision=source.revision if source else None,
                seen=seen,
            )
            if claim is None:
                bound.info("attempt not claimed: already taken, or the run moved on")
                return {"claimed": False}
            bound = bound.bind(definition=claim.run["definition"])
            try:
                outcome = _run_claimed(ctx, claim, problem, source, secrets, masker, scratch, spare)
            finally:
                keeper.stop()  # before the release: no renewal may bring the lease back after it
                if release:
                    away_tolerant(lambda: ctx.leases.release(run_id, attempt), None, "lease release")()
            bound.info("attempt ended", outcome=outcome)
            return {"claimed": True, "outcome": outcome}
        except (SystemExit, KeyboardInterrupt):
            # A cold shutdown: the job's process group is already killed; say so now rather than
            # leave the run to the lease reaper.
            if claim is not None and ctx.lifecycle.fail(claim, WORKER_LOST, None, COLD_SHUTDOWN):
                bound.warning("attempt ended by a cold shutdown of the worker")
            raise
        except Exception as exc:
            # RQ logs what escapes after the masking ends: log it masked here, and pass on no value.
            bound.exception("attempt crashed")
            raise AttemptCrashed(masker.mask(f"{type(exc).__name__}: {exc}")) from None
        finally:
            if spare is not None:
                spare.discard()  # ended with its job, or never used: an attempt that ran nothing
            if scratch is not None:
                ctx.trash.put(scratch)  # on the worker's removal thread: the next attempt need not wait for it
            _refill(ctx)


def _folder(ctx: _Context, run_id: str, attempt: int, job: dict[str, Any]) -> tuple[Any, Path]:
    """The attempt's spare sandbox (if the job fits one) and its folder: one per delivery, so that a
    duplicate delivery on the same machine never touches the first one's files."""
    spare = ctx.spares.take(job)  # a sandbox set up ahead, with a folder of its own
    (ctx.settings.home / "runs").mkdir(mode=0o700, parents=True, exist_ok=True)
    if spare is not None:
        return spare, spare.folder
    scratch = Path(tempfile.mkdtemp(prefix=f"{run_id}-{attempt}-", dir=ctx.settings.home / "runs"))
    for own in ("home", "tmp"):  # the job's HOME, and its TMPDIR when unsandboxed
        (scratch / own).mkdir()
    return None, scratch


def _run_claimed(
    ctx: _Context,
    claim: Claim,
    problem: tuple[str, str] | None,
    source: Materialized | None,
    secrets: Mapping[str, str],
    masker: Masker,
    scratch: Path | None,
    spare: Any,
) -> str:
    """The claimed attempt to its end: its job run, or the problem that stopped it recorded as its failure.

    An exception of jobledger's own machinery is recorded too (``InternalError``, with the exception's type),
    so it counts against the retry strategy like any failure; only a store outage leaves it to redelivery.
    """
    try:
        if problem is None and scratch is not None:
            return _execute(ctx, claim, source, secrets, masker, scratch, spare)
        reason, text = problem if problem is not None else (INTERNAL_ERROR, "no folder for the attempt")
    except STORE_ERRORS:
        raise
    except Exception as exc:
        log.exception("attempt crashed", run_id=claim.run["id"], attempt=claim.attempt)
        reason, text = INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"[:MAX_MESSAGE_CHARS]
    message = masker.mask(text)
    _note(ctx, claim, masker, f"{'source unavailable' if reason == SOURCE_UNAVAILABLE else reason}: {message}")
    return _record(ctx, claim, ChildResult(exit_code=None), reason, message)


def _started(ctx: _Context, scratch: Path, session: int) -> None:
    """The job runs: note its session for a later worker, and set up the next attempt's sandbox meanwhile."""
    note_session(scratch, session)
    _refill(ctx)  # while this job runs: a SQL runner's start (0.1-0.4 s) is then over when the next comes


def _refill(ctx: _Context) -> None:
    """Set up the next attempt's sandbox now, on the spares' thread, while the worker goes on."""
    try:
        ctx.spares.refill_soon()
    except Exception as exc:  # the next attempt then sets up its own
        log.warning("could not start a spare sandbox", error=str(exc))


def _pinned(run: dict[str, Any]) -> str | None:
    """The source revision the run's first attempt ran, which every later attempt runs too (None: none yet)."""
    revisions = run.get("source_revisions") or {}
    return revisions[min(revisions, key=int)] if revisions else None


def _prepare(
    ctx: _Context, job: dict[str, Any], scratch: Path, secrets: Mapping[str, str], pinned: str | None = None
) -> tuple[Materialized | None, str | None]:
    """The materialized source, or why it cannot be had; SQL jobs have nothing to materialize here.

    ``pinned``: the revision an earlier attempt of the run ran. A GIT source is fetched at that commit, not
    at its branch's current one; any other source that has moved on since is refused: a run runs one revision.
    """
    if (job["type"] == "SQL" and "pipeline" in job and not is_script(job)) or job["type"] in (
        DATA_SYNC,
        BUILTIN,
        "EXTERNAL_APP",
    ):
        return None, None  # a pipeline in the definition, one jobledger writes, or HTTP calls: nothing to fetch
    if pinned is not None and job["source"]["type"] == "GIT":
        source = job["source"]
        job = {**job, "source": {**source, "sourceDef": {**source["sourceDef"], "reference": pinned}}}
    context = SourceContext(
        workspace=ctx.settings.workspace,
        cache=ctx.settings.home / "cache",
        scratch=scratch / "source",
        secrets=secrets,
        resources=ctx.resources,
    )
    try:
        source = materialize(context, job)
        if pinned is not None and source.revision is not None and source.revision != pinned:
            return None, f"the source changed since the run's first attempt ({pinned}, now {source.revision})"
        configs = job.get("configFiles") or []
        if (ctx.sandbox.enabled or configs) and not source.cwd.is_relative_to(scratch):
            source = working_copy(source, context.scratch)  # the job's own copy: configuration files go beside it
        for ref in configs:
            version = ctx.resources.version(ref["name"], ref["version"])
            (source.entry.parent / version["filename"]).write_bytes(ctx.resources.content(version))
        return source, None
    except SourceError as exc:
        return None, str(exc)
    except STORE_ERRORS:
        raise  # an outage, not the source's fault: the attempt is delivered again once the store is back
    except Exception as exc:  # an archive that is encrypted, damaged or compressed in a way Python lacks, ...
        return None, f"cannot prepare the source: {type(exc).__name__}: {exc}"


def _note(ctx: _Context, claim: Claim, masker: Masker, text: str) -> None:
    line = [(utc_now(), "jobledger", masker.mask(text))]
    away_tolerant(lambda: ctx.run_log.write(claim.run["id"], claim.attempt, line), None, "a note to the run's log")()


def _pipeline_file(entry: Path) -> dict[str, Any]:
    """The pipeline in a YAML or JSON file: a ``stackSpec.job`` object, or ``{"job": ...}`` around one."""
    raw = load_document(entry)
    if isinstance(raw, dict) and set(raw) == {"job"}:
        raw = raw["job"]
    # A file's steps are DuckDB SQL unless it says ``dialect: spark``; then transpiled here, as at define.
    return transpile_steps(normalize_pipeline(raw, entry.name), "duckdb", entry.name)


def _script_file(entry: Path) -> str:
    """A ``.sql`` file's text (a ``.hql`` one's as DuckDB SQL); ``InvalidInput`` when it is too large, empty,
    not UTF-8, or Hive SQL that does not transpile."""
    try:
        data = entry.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot be read: {exc.strerror}", entry.name) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("is not UTF-8 text", entry.name) from None
    if not text.strip() or len(text) > MAX_SQL_CHARS or "\x00" in text:
        raise InvalidInput(f"must hold SQL statements, at most {MAX_SQL_CHARS} characters", entry.name)
    if entry.suffix.lower() == ".hql":
        text = hive_to_duckdb(text, entry.name)
    return text


@dataclass(frozen=True)
class _SqlChild:
    """How to start the SQL runner: argv, its result file, and what its environment needs besides the job's:
    postgres depots' passwords, the worker's cloud credentials for S3 depots."""

    argv: list[str]
    result_path: Path
    passwords: dict[str, str]
    binds: tuple[Path, ...]  # the local depots' folders it reads and writes, inside the sandbox


def _sql_child(
    ctx: _Context, job: dict[str, Any], scratch: Path, source: Materialized | None, run_id: str = ""
) -> _SqlChild | str:
    """The runner's argv and its result file, with the depots resolved into the run folder; or why not."""
    script: str | None = None
    sync: dict[str, Any] | None = None
    try:
        if job["type"] in (DATA_SYNC, BUILTIN):
            pipeline, sync = generated_pipeline(ctx.store, ctx.syncs, job)
        elif is_script(job) and source is not None:
            script = _script_file(source.entry)
            pipeline = job.get("pipeline") or normalize_pipeline({}, script=True)
        else:
            pipeline = job["pipeline"] if source is None else _pipeline_file(source.entry)
        names = {x["dataset"]["depot"] for x in [*pipeline["inputs"], *pipeline["outputs"]]}
        depots = {name: get_depot(ctx.store, name) for name in sorted(names)}
        check_depots(pipeline, {name: depot["type"] for name, depot in depots.items()})
        if job.get("prerun"):  # a pre-run's task: every output (and what upstream tasks wrote) in scratch
            prerun = job["prerun"]
            pipeline, depots = scratch_pipeline(pipeline, depots, prerun["id"], prerun["writes"])
        refs = {n: d["config"]["password_secret"] for n, d in depots.items() if d["config"].get("password_secret")}
        values = ctx.secrets.resolve(refs.values())
    except (NotFound, InvalidInput) as exc:
        return str(exc)
    spark_s3 = None  # how a Spark pipeline reaches S3: Spark itself over s3a, or staged through the run folder
    if job.get("engine") == "spark" and any(depot["type"] == "s3" for depot in depots.values()):
        from queue_core.services.spark import has_s3a_connector, s3_missing

        missing = s3_missing()  # the submitter checked its own machine; this worker's master and jars may differ
        if missing is not None:
            return f"S3 depots on Spark are reached through s3a on this master, but this worker lacks {missing}"
        spark_s3 = "s3a" if has_s3a_connector() else "stage"
    run_dir = scratch / "sql"
    run_dir.mkdir()
    spec = {
        "pipeline": pipeline,
        "depots": depots,
        "run_dir": str(run_dir),
        "result_path": str(run_dir / "result.json"),
        "script": script,
    }
    if spark_s3 is not None:
        spec["spark_s3"] = spark_s3
    if sync is not None and sync["watermark"] is not None:
        spec["sync"] = {"watermark": sync["watermark"]}
    spec_path = run_dir / "spec.json"
    spec_path.write_text(json.dumps(spec))  # no password in it: the run's SQL can read its run folder
    passwords: dict[str, str] = {}
    if refs:
        from workers.sql.postgres import PASSWORD_ENV_PREFIX  # here: only a postgres depot pays for importing psycopg

        passwords = {f"{PASSWORD_ENV_PREFIX}{name}": values[secret] for name, secret in refs.items()}
    argv = [sys.executable, str(SQL_RUNNER), str(spec_path)]
    if job.get("engine") == "spark":
        from queue_core.services.spark import JARS_VARIABLE, postgres_driver_missing, spark_jars

        if any(depot["type"] == "postgres" for depot in depots.values()):
            missing = postgres_driver_missing()  # Spark reads and writes PostgreSQL over JDBC: no fallback
            if missing is not None:
                return f"PostgreSQL depots on Spark are reached over JDBC, but this worker lacks {missing}"
        argv = [sys.executable, str(SPARK_RUNNER), str(spec_path)]
        passwords.update({k: os.environ[k] for k in SPARK_VARIABLES if os.environ.get(k)})
        passwords[JARS_VARIABLE] = ",".join(spark_jars())  # resolved here: the child imports no queue_core
        # The driver's command line names the run, so an operator (and a test) can tell whose JVM it is.
        passwords["PYSPARK_SUBMIT_ARGS"] = f"--name jobledger-{run_id} pyspark-shell"
    if any(depot["type"] == "s3" for depot in depots.values()):
        # S3 depots are read and written by the runner's own Python (boto3) with the worker's cloud
        # credentials: the job's SQL cannot see them (no getenv, no external access: see lock_down).
        passwords.update({k: v for k, v in os.environ.items() if k.startswith(CLOUD_PREFIX)})
    return _SqlChild(argv, run_dir / "result.json", passwords, _depot_folders(depots.values()))


def _app_child(
    job: dict[str, Any], scratch: Path, secrets: Mapping[str, str]
) -> tuple[list[str], Path, Path, dict[str, str]]:
    """How to start an EXTERNAL_APP job: argv, its result file, its folder, and its secrets' values (by name,
    in its environment only: the spec file names them)."""
    folder = scratch / "app"
    folder.mkdir()
    # A pre-run's application is told so on each request (it cannot be redirected to scratch as tables are).
    spec = {"app": job["app"], "result_path": str(folder / "result.json"), "prerun": bool(job.get("prerun"))}
    (folder / "spec.json").write_text(json.dumps(spec))
    values = {name: secrets[name] for name in secret_refs(job["app"])}
    argv = [sys.executable, str(APP_RUNNER), str(folder / "spec.json")]
    return argv, folder / "result.json", folder, {"JOBLEDGER_APP_SECRETS": json.dumps(values)}


def _depot_folders(depots: Any) -> tuple[Path, ...]:
    """The folders of local and DuckDB depots (a DuckDB file writes its WAL beside it) that exist."""
    folders = []
    for depot in depots:
        if depot["type"] in ("local", "duckdb"):
            path = Path(depot["config"]["path"]).expanduser().resolve()
            folder = path if depot["type"] == "local" else path.parent
            if folder.is_dir():
                folders.append(folder)
    return tuple(dict.fromkeys(folders))


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
    spare: Spare | None = None,
) -> str:
    job = claim.run["job"]
    result_path: Path | None = None
    extra_env: dict[str, str] = {}
    binds: tuple[Path, ...] = ()
    if job["type"] in RUNNER_TYPES:
        child = _sql_child(ctx, job, scratch, source, claim.run["id"])
        if isinstance(child, str):
            # A pipeline file that does not validate, a depot gone since define, a depot's secret unset.
            _note(ctx, claim, masker, child)
            return _record(ctx, claim, ChildResult(exit_code=None), SOURCE_UNAVAILABLE, child)
        argv, result_path, cwd, extra_env = child.argv, child.result_path, scratch / "sql", child.passwords
        binds = child.binds
        if extra_env:
            hidden = [
                v
                for k, v in extra_env.items()
                if (not k.startswith(CLOUD_PREFIX) or k in CLOUD_SECRETS)
                and k not in (*SPARK_VARIABLES, "PYSPARK_SUBMIT_ARGS")
            ]
            with masking(hidden) as wider:
                return _supervise(ctx, claim, argv, cwd, secrets, extra_env, wider, result_path, scratch, binds)
    elif job["type"] == "EXTERNAL_APP":
        argv, result_path, cwd, extra_env = _app_child(job, scratch, secrets)
    elif source is None:
        message = f"{job['type']} jobs need a source"
        _note(ctx, claim, masker, message)
        return _record(ctx, claim, ChildResult(exit_code=None), UNSUPPORTED, message)
    else:
        argv, cwd = _argv(job, source), source.cwd
        if source.revision is not None:
            _note(ctx, claim, masker, f"source {job['source']['type']} at {source.revision}")
    return _supervise(ctx, claim, argv, cwd, secrets, extra_env, masker, result_path, scratch, binds, spare)


def _supervise(
    ctx: _Context,
    claim: Claim,
    argv: list[str],
    cwd: Path,
    secrets: Mapping[str, str],
    extra_env: Mapping[str, str],
    masker: Masker,
    result_path: Path | None,
    scratch: Path,
    binds: tuple[Path, ...] = (),
    spare: Spare | None = None,
) -> str:
    """Run the child, sandboxed, to its end and record the outcome."""
    run_id, job = claim.run["id"], claim.run["job"]
    timeout_seconds = float(job["timeout"]) * 60
    # While the store is away the job keeps running: no cancel is seen, the lease is not renewed (the
    # reaper may declare the attempt lost meanwhile, and then its outcome is refused), lines are kept.
    supervision = Supervision(
        timeout_seconds=timeout_seconds,
        kill_grace_seconds=ctx.settings.kill_grace_seconds,
        should_stop=away_tolerant(lambda: ctx.store.version(run_id) != claim.version, False, "cancel check"),
        stop_poll_seconds=ctx.settings.cancel_poll_seconds,
        renew=away_tolerant(
            lambda: ctx.leases.hold(run_id, claim.attempt, worker_name(), ctx.settings.lease_seconds),
            None,
            "lease renewal",
        ),
        renew_seconds=ctx.settings.lease_renew_seconds,
        started=lambda session: _started(ctx, scratch, session),
    )
    output = BufferedLines(
        lambda lines: ctx.run_log.write(run_id, claim.attempt, [(t, s, masker.mask(line)) for t, s, line in lines])
    )
    watch = LogWatch(job["retryStrategy"].get("rules", ()), output, masker.mask)  # rules: only when defined
    sandbox = ctx.sandbox
    sandbox.prepare(scratch, [p for p in scratch.iterdir() if p.name != SESSION_FILE])
    # The warm SQL runner only unsandboxed: a zygote outliving attempts would be the one process that
    # sees every attempt's request (and postgres passwords), and a job running as its user could attack it.
    warm = result_path is not None and job["type"] == "SQL" and not sandbox.enabled and job.get("engine") != "spark"
    spawn: Spawn | None = _spawn_sql if warm else None
    if ctx.spares.fits(spare, binds) and spare is not None and not (isinstance(spare, Seat) and spare.chunk.broken):
        # The job in the sandbox set up ahead; if that sandbox is gone, run_child sets up a new one (the
        # wrapped argv it was given), never runs the job outside.
        spawn = lambda _wrapped, where, env: spare.start(argv, where, env)  # noqa: E731
    # A child started in its chunk's shared sandbox leads its own session there: the SIGTERM is for it.
    shared = isinstance(spare, Seat) and spawn is not None
    result = run_child(
        sandbox.wrap(argv, scratch, cwd, job.get("network"), binds),
        cwd,
        {**_env(ctx, claim, secrets, scratch), **extra_env},
        watch,
        supervision,
        spawn=spawn,
        sandboxed=sandbox.enabled and not shared,
    )
    output.flush()
    try:
        return _outcome(ctx, claim, masker, result, timeout_seconds, result_path, watch.matches, scratch)
    finally:
        output.flush()  # lines kept through an outage: the outcome's append waited for the store
        if output.dropped:
            _note(ctx, claim, masker, f"{output.dropped} output lines were lost while the store was unavailable")


def _outcome(
    ctx: _Context,
    claim: Claim,
    masker: Masker,
    result: ChildResult,
    timeout_seconds: float,
    result_path: Path | None,
    log_matches: tuple[int, ...],
    scratch: Path,
) -> str:
    run_id = claim.run["id"]
    if result.stopped:
        return "stopped: the run was cancelled or declared lost"
    if result.timed_out:
        message = f"timeout after {timeout_seconds:g}s"
        if result.signal == signal.SIGKILL:
            message += f"; the job ignored SIGTERM and was killed {ctx.settings.kill_grace_seconds:g}s later"
        _note(ctx, claim, masker, message)
        return _record(ctx, claim, result, TIMEOUT, message, log_matches)
    sql_result = _sql_result(result_path)
    if sql_result is not None:
        sql_result = masker.mask_value(sql_result)  # a preview row could hold a secret's value
    if result.exit_code == 0:
        if sql_result is not None:
            _note(ctx, claim, masker, json.dumps(sql_result, separators=(",", ":")))
        values = values_from_sql_result(sql_result) if sql_result is not None else read_values(scratch)
        if isinstance(values, str):
            message = masker.mask(values)
            _note(ctx, claim, masker, message)
            return _record(ctx, claim, result, INVALID_VALUES, message, log_matches)
        values = masker.mask_value(values)  # a value may hold a secret's value: never the log
        # A pre-run's writes are no dataset's lineage, and fire no trigger: its outputs are scratch copies.
        prerun = claim.run["job"].get("prerun")
        written = written_events(sql_result, claim.attempt) if sql_result is not None and not prerun else []
        sync = builtin_sync(claim.run["job"])
        # A pre-run's copy moves no watermark: the next real incremental sync must still copy those rows.
        if sync is not None and sql_result is not None and not prerun:  # with the sync's new watermark
            recorded = ctx.syncs.succeed(claim, sync, sql_result, written, values)
        else:
            recorded = ctx.lifecycle.succeed(claim, sql_result, written, values)
        if not recorded:
            log.warning("late outcome refused: the run moved on", run_id=run_id, attempt=claim.attempt)
            return "late"
        return "succeeded"
    detail = f"killed by signal {result.signal}" if result.signal else f"exit code {result.exit_code}"
    if sql_result is not None and sql_result.get("error"):
        detail = f"{detail}: {masker.mask(sql_result['error'])}"
    return _record(ctx, claim, result, NON_ZERO_EXIT, detail, log_matches)


def _record(
    ctx: _Context, claim: Claim, result: ChildResult, reason: str, message: str, log_matches: tuple[int, ...] = ()
) -> str:
    if not ctx.lifecycle.fail(claim, reason, result.exit_code, message, log_matches):
        log.warning("late outcome refused: the run moved on", run_id=claim.run["id"], attempt=claim.attempt)
        return "late"
    return f"failed: {reason}"
