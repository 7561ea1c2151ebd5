"""The Python API: every user task as one method that loads, decides and appends."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import redis

from queue_core.domain.clusters import DEFAULT_CLUSTER
from queue_core.errors import StoreUnavailable, WaitTimeout
from queue_core.eventlog.chain import ChainReport
from queue_core.eventlog.connection import connect, redis_url
from queue_core.eventlog.events import (
    NewEvent,
    Recorded,
)
from queue_core.eventlog.health import check_store
from queue_core.eventlog.runlog import LogLine, RunLog
from queue_core.eventlog.seals import SealCheck, load_verifier
from queue_core.eventlog.store import EventStore
from queue_core.keys import Keys
from queue_core.readmodels.history import Change, Phase
from queue_core.readmodels.materialized import ReadModels, Rebuilt, VerifyResult
from queue_core.services.audit import AuditService
from queue_core.services.backfills import BackfillService
from queue_core.services.catalog import Catalog, DefineResult
from queue_core.services.cluster_load import cluster_load
from queue_core.services.depots import add_depot, get_depot, lineage, list_depots
from queue_core.services.library import LibraryService, UsedBuiltin
from queue_core.services.lifecycle import RunLifecycle
from queue_core.services.notifications import NotificationService
from queue_core.services.pools import PoolService
from queue_core.services.preruns import PrerunService
from queue_core.services.resources import ResourceStore
from queue_core.services.runs import RunService
from queue_core.services.schedules import ScheduleRequest, ScheduleService
from queue_core.services.secrets import SecretStore
from queue_core.services.submissions import Submissions
from queue_core.services.triggers import TriggerService
from queue_core.services.workflows import AppliedWorkflow, Plan, WorkflowService
from queue_core.settings import Settings
from queue_core.specs.documents import load_document

__all__ = ["Client", "DefineResult", "ScheduleRequest", "WaitTimeout"]


class Client:
    """A connection to one jobledger store and the use cases on it."""

    def __init__(
        self,
        redis_url: str | None = None,
        settings: Settings | None = None,
        connection: redis.Redis | None = None,
        check_epoch: bool = True,
    ) -> None:
        """``check_epoch=False`` is for import and restore, which fill a store that came back empty."""
        base = settings or Settings.from_env()
        if redis_url is not None:
            base = Settings(**{**base.__dict__, "redis_url": redis_url})
        self.settings = base
        try:
            self.redis = connection if connection is not None else connect(base)
            self.store = EventStore(
                self.redis, Keys(), replicas=base.replicas_to_wait, replica_wait_ms=base.replica_wait_ms
            )
            check_store(self.store, base, epoch=check_epoch)
        except StoreUnavailable:
            raise
        except redis.ConnectionError as exc:
            raise StoreUnavailable(f"store unavailable: {exc}") from exc
        self.read_models = ReadModels(self.store)
        self.lifecycle = RunLifecycle(self.store)
        self.run_log = RunLog(self.redis, self.store.keys)
        self.secrets = SecretStore(self.store, self.settings)
        self.resources = ResourceStore(self.store, self.settings)
        self.catalog = Catalog(self.store, self.read_models)
        self.pools = PoolService(self.store, self.read_models)
        self.submissions = Submissions(self.store, self.read_models, self.catalog, self.resources)
        self.audit = AuditService(self.store)
        self.runs = RunService(self.store, self.read_models, self.run_log)
        self.notification_service = NotificationService(self.store, self.read_models)
        self.workflows = WorkflowService(self.store, self.read_models, self.catalog, self.resources)
        self.schedules = ScheduleService(
            self.store, self.read_models, self.settings, self.catalog, self.submissions, self.workflows, self.runs
        )
        self.preruns = PrerunService(self.store, self.read_models, self.workflows, self.secrets)
        self.triggers = TriggerService(self.store, self.read_models, self.submissions, self.workflows)
        self.backfills = BackfillService(
            self.store, self.read_models, self.schedules, self.submissions, self.workflows, self.runs
        )
        self.library = LibraryService(self.workflows, self.schedules)

    @classmethod
    def from_env(cls) -> Client:
        """A client for the store ``REDIS_URL`` names, else the embedded one under ``JOBLEDGER_HOME``."""
        return cls(settings=Settings.from_env())

    @property
    def url(self) -> str:
        return redis_url(self.settings)

    # -- definitions ----------------------------------------------------------------------------

    def define_file(self, path: str | Path) -> DefineResult:
        """Create or revise a definition from a JSON or YAML file."""
        return self.catalog.define_file(path)

    def define_document(self, path: str | Path) -> list[DefineResult]:
        """Define from a file: one definition, or one per SQL job of a DataOS workflow (all checked first)."""
        return self.catalog.define_document(path)

    def define(self, raw: Mapping[str, Any]) -> DefineResult:
        """Create the definition, or append a new version if its name is live and its content changed."""
        return self.catalog.define(raw)

    def get_definition(self, name_or_id: str, as_of: str = "+") -> dict[str, Any]:
        """The definition with every version (as of position ``as_of``); a deleted one stays readable by UUID."""
        return self.catalog.get_definition(name_or_id, as_of)

    def list_definitions(self, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Live definitions (and deleted ones if asked), by name."""
        return self.catalog.list_definitions(include_deleted)

    def delete_definition(self, name_or_id: str) -> str:
        """Delete a live definition; its name becomes free and its history stays in the log."""
        return self.catalog.delete_definition(name_or_id)

    # -- clusters -------------------------------------------------------------------------------

    def create_cluster(self, name: str, workers: int = 1, instance_type: str = "local", engine: str = "duckdb") -> str:
        """Register a cluster (an RQ queue of that name); returns its id. ``engine`` (``duckdb`` or ``spark``):
        what its SQL pipelines run on when their definition names no engine."""
        return self.catalog.create_cluster(name, workers, instance_type, engine)

    def list_clusters(self) -> list[dict[str, Any]]:
        """Every cluster, ``default`` first."""
        return self.catalog.list_clusters()

    def cluster_load(self, clusters: list[str]) -> dict[str, dict[str, Any]]:
        """Per cluster, the live workers the store sees on its queue and how many runs wait."""
        return cluster_load(self.store, self.read_models, clusters)

    def get_cluster(self, name_or_id: str) -> dict[str, Any]:
        """One cluster by name or id."""
        return self.catalog.get_cluster(name_or_id)

    # -- pools ----------------------------------------------------------------------------------

    def create_pool(self, name: str, slots: int) -> dict[str, Any]:
        """Create a pool of ``slots`` run slots; returns it (see ``PoolService``)."""
        return self.pools.create(name, slots)

    def resize_pool(self, name: str, slots: int) -> dict[str, Any]:
        """Give a pool another number of slots; runs holding slots keep them."""
        return self.pools.resize(name, slots)

    def delete_pool(self, name: str) -> None:
        """Delete a pool that no run holds or waits for."""
        self.pools.delete(name)

    def list_pools(self) -> list[dict[str, Any]]:
        """Every pool, by name, with the slots in use and the runs waiting."""
        return self.pools.all()

    def get_pool(self, name: str) -> dict[str, Any]:
        """One pool with the runs holding and waiting for its slots."""
        return self.pools.show(name)

    # -- runs -----------------------------------------------------------------------------------

    def submit(
        self,
        definition: str,
        cluster: str | None = None,
        args: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        idempotency_key: str | None = None,
        logical_date: str | None = None,
        version: int | None = None,
        ref: str | None = None,
        priority: int | None = None,
        tags: Sequence[str] = (),
        array: int | None = None,
    ) -> str:
        """Submit a run of the definition's latest version (or ``version``; a GIT source at ``ref``; at
        ``priority``; ``tags`` on top of the definition's; an array job of ``array`` children); returns the run
        id (see ``Submissions.submit``)."""
        return self.submissions.submit(
            definition, cluster, args, env, timeout, idempotency_key, logical_date, version, ref, priority, tags, array
        )

    def sql(
        self,
        query: str,
        inputs: Mapping[str, str] | None = None,
        output: str | None = None,
        save_mode: str = "errorIfExists",
        cluster: str = DEFAULT_CLUSTER,
    ) -> str:
        """Submit one SQL query as a run of no definition; returns the run id (see ``Submissions.sql``)."""
        return self.submissions.sql(query, inputs, output, save_mode, cluster)

    def get_run(self, run_id: str, as_of: str = "+") -> dict[str, Any]:
        """The run as ``status --json`` shows it (as it was at position ``as_of``)."""
        return self.runs.get(run_id, as_of)

    def run_detail(self, run_id: str, as_of: str = "+") -> dict[str, Any]:
        """The run's whole document (as of position ``as_of``): the public view plus its job, message,
        idempotency key, and ``source_revisions``: each attempt number's commit, ETag or resource version.
        """
        return self.runs.document(run_id, as_of)

    def list_runs(
        self,
        status: str | None = None,
        definition: str | None = None,
        limit: int | None = 100,
        as_of: str = "+",
        tag: str | None = None,
    ) -> list[dict[str, Any]]:
        """Runs newest first, filtered by status, definition name and tag; ``as_of``: as they were then."""
        return self.runs.list_runs(status, definition, limit, as_of, tag)

    def cancel_tagged(self, tag: str, status: str | None = None, count_only: bool = False) -> list[str]:
        """Cancel every run tagged ``tag`` that has not ended (only those in ``status``, if given); returns
        their ids (with ``count_only``, the ids it would cancel, cancelling none)."""
        return self.runs.cancel_tagged(tag, status, count_only)

    def notifications(
        self, run: str | None = None, failed: bool = False, limit: int | None = 100
    ) -> list[dict[str, Any]]:
        """Notifications newest first: of one run (or workflow run, or schedule id), or only those given up."""
        return self.notification_service.listing(run, failed, limit)

    def cancel(self, run_id: str) -> dict[str, Any]:
        """Cancel a run that has not ended; a running attempt's process group is killed by its worker."""
        return self.runs.cancel(run_id)

    def wait(self, run_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until the run ends; raises ``WaitTimeout`` after ``timeout`` seconds."""
        return self.runs.wait(run_id, timeout)

    def logs(self, run_id: str, follow: bool = False) -> Iterator[LogLine]:
        """The run's output lines; with ``follow``, new ones as they come until the run ends."""
        return self.runs.logs(run_id, follow)

    # -- secrets and resources --------------------------------------------------------------------

    def set_secret(self, name: str, value: str) -> None:
        """Store a secret's value outside the log; the log records only that ``name`` was set."""
        self.secrets.set(name, value)

    def list_secrets(self) -> list[str]:
        """Secret names, sorted; values are never returned."""
        return self.secrets.names()

    def delete_secret(self, name: str) -> None:
        """Forget a secret's value; the log records the deletion."""
        self.secrets.delete(name)

    def add_resource(self, name: str, path: str | Path) -> dict[str, Any]:
        """Register a script or archive as the resource's next version (identical content: none).

        Returns the version with ``created`` saying whether it is new.
        """
        version, created = self.resources.add(name, path)
        return {**version, "created": created}

    def list_resources(self) -> list[dict[str, Any]]:
        """Every resource with its versions, by name."""
        return self.resources.list(self.read_models)

    def get_resource(self, name: str) -> dict[str, Any]:
        """One resource with every version."""
        return self.resources.get(name)

    # -- depots ---------------------------------------------------------------------------------

    def add_depot(self, name: str, type: str, **options: Any) -> dict[str, Any]:
        """Register a depot: ``local`` / ``duckdb`` (path), ``s3`` (bucket, prefix, region, endpoint_url) or
        ``postgres`` (dsn without a password, password_secret: the name of the secret holding it)."""
        return add_depot(self.store, name, type, options)

    def get_depot(self, name: str) -> dict[str, Any]:
        """One depot; ``NotFound`` when no depot has that name."""
        return get_depot(self.store, name)

    def list_depots(self) -> list[dict[str, Any]]:
        """Every depot, by name."""
        return list_depots(self.read_models)

    def lineage(self, dataset: str) -> dict[str, Any]:
        """Which runs wrote ``dataset`` (an address), oldest first, with rows, schema fingerprint and inputs."""
        return lineage(self.read_models, dataset)

    # -- the log --------------------------------------------------------------------------------

    def events(
        self,
        aggregate: str | None = None,
        type: str | None = None,
        limit: int | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> list[Recorded]:
        """Events oldest first, from ``since`` to ``until`` (positions, inclusive); with ``limit``, the newest."""
        return self.audit.events(aggregate, type, limit, since, until)

    def follow_events(
        self, after: str, aggregate: str | None = None, type: str | None = None, block_ms: int = 1000
    ) -> Iterator[Recorded]:
        """New events after position ``after`` as they land, forever (stop by closing the iterator)."""
        return self.audit.follow(after, aggregate, type, block_ms)

    def verify_chain(self, public_key: str | Path | None = None) -> ChainReport:
        """Walk the log's hash chain from its first entry; the report names the first entry that breaks it.

        After a trim the walk starts from the archive's hash before the first entry left in Redis. Every seal
        is checked with the ledger's public key: the file ``public_key``, else the settings' one if it exists.
        """
        return self.verify_seals(public_key)[0]

    def verify_seals(self, public_key: str | Path | None = None) -> tuple[ChainReport, SealCheck, str | None]:
        """``verify_chain``, with what the seals cover and a note on how the log was walked (or None)."""
        return self.audit.verify_chain(load_verifier(self.settings, public_key))

    def fold_until(self, until: str) -> dict[str, dict[str, dict[str, Any]]]:
        """The read models as of position (or ISO time) ``until``: model -> entity -> document.

        Folds every event up to and including ``until``, reading the archived part back from S3 when the
        log was trimmed. Documents that no longer existed then (a released name) are left out.
        """
        return self.audit.as_of(until)

    def rebuild_read_models(self, progress: Callable[[int], None] | None = None) -> Rebuilt:
        """Drop every read model and rebuild it from the log, in place, while the system keeps running.

        ``progress`` is told how many events have been folded, after each batch.
        """
        return self.audit.rebuild(progress)

    def diff_definition(self, name_or_id: str, old: int, new: int) -> list[Change]:
        """What changed in a definition from version ``old`` to version ``new``."""
        return self.catalog.diff(name_or_id, old, new)

    def run_timeline(self, run_id: str, as_of: str = "+") -> list[Phase]:
        """Where a run's time went: each phase of its life, per attempt."""
        return self.runs.timeline(run_id, as_of)

    def replay_verify(self, progress: Callable[[int], None] | None = None) -> VerifyResult:
        """Rebuild every read model from the log into a scratch namespace and compare with the live ones.

        ``progress`` is told how many events have been folded, after each batch.
        """
        return self.audit.verify(progress)

    # -- schedules ------------------------------------------------------------------------------

    def create_schedule(
        self,
        name: str,
        definition: str | None = None,
        workflow: str | None = None,
        cron: str | None = None,
        at: str | None = None,
        timezone: str = "UTC",
        end: str | None = None,
        catchup: str = "latest",
        overlap: str = "skip",
        args: str | None = None,
        cluster: str | None = None,
        now: datetime | None = None,
        jitter: float = 0.0,
        pause_on_failure: bool = False,
        tags: Sequence[str] = (),
        notifications: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Schedule runs of a definition (or a workflow): periodic (``cron`` in ``timezone``) or once (``at``).

        ``catchup`` (all, latest, none) says what ticks missed while no scheduler ran become;
        ``overlap`` (skip, allow, queue, replace) what a tick does while the previous run is active.
        ``${logical_date}`` and ``${logical_date:%Y%m%d}`` in ``args`` become each tick's logical date.
        Ticks count from ``now`` (default: the current time). ``jitter`` (minutes) fires each tick a fixed,
        hash-derived offset later; ``pause_on_failure`` pauses the schedule when a run it fired fails.
        ``tags`` go on every run it fires; ``notifications`` (``onMissedTick``) say who hears of a tick missed
        or skipped.
        """
        request = ScheduleRequest(
            name,
            definition,
            workflow,
            cron,
            at,
            timezone,
            end,
            catchup,
            overlap,
            args,
            cluster,
            jitter,
            pause_on_failure,
            tuple(tags),
            notifications,
        )
        return self.schedules.create(request, now)

    def list_schedules(self, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Every schedule, by name, with its next tick (``next_fire``)."""
        return self.schedules.list_all(include_deleted)

    def get_schedule(self, name_or_id: str, history: int = 50) -> dict[str, Any]:
        """One schedule and its newest ``history`` ticks, newest first: fired (with the run), skipped, missed."""
        return self.schedules.get(name_or_id, history)

    def pause_schedule(self, name_or_id: str, note: str = "") -> dict[str, Any]:
        """Stop firing until resumed; ``note`` says why (shown by list and show)."""
        return self.schedules.pause(name_or_id, note)

    def trigger_schedule(self, name_or_id: str, now: datetime | None = None) -> dict[str, Any]:
        """Fire the schedule once now, outside its cadence (recorded as manual)."""
        return self.schedules.trigger_now(name_or_id, now)

    def backfill_schedule(
        self,
        name_or_id: str,
        start: str,
        end: str,
        reprocess: str = "none",
        max_active: int = 1,
        backwards: bool = False,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """One run per tick of the schedule from ``start`` to ``end``, its logical date the tick, at most
        ``max_active`` at once; ticks with a run are left alone unless ``reprocess`` (failed, all) says otherwise.
        Returns the plan (with the backfill's ``id``, None on a ``dry_run``)."""
        return self.backfills.create(name_or_id, start, end, reprocess, max_active, backwards, dry_run)

    def list_backfills(self) -> list[dict[str, Any]]:
        """Every backfill, newest first."""
        return self.backfills.list_all()

    def get_backfill(self, backfill_id: str) -> dict[str, Any]:
        """One backfill with each tick's run and status, and the ticks still waiting."""
        return self.backfills.get(backfill_id)

    def cancel_backfill(self, backfill_id: str) -> dict[str, Any]:
        """Stop a backfill: no more ticks are submitted, its runs still going are cancelled."""
        return self.backfills.cancel(backfill_id)

    def list_triggers(self) -> list[dict[str, Any]]:
        """Every data-aware trigger (of a definition or workflow) with how often it fired and its last run."""
        return self.triggers.list_all()

    def get_trigger(self, name: str) -> dict[str, Any]:
        """The trigger of the definition or workflow ``name``."""
        return self.triggers.get(name)

    def resume_schedule(self, name_or_id: str, now: datetime | None = None) -> dict[str, Any]:
        """Fire again, from now on: ticks that fell while paused are not fired."""
        return self.schedules.resume(name_or_id, now)

    def delete_schedule(self, name_or_id: str) -> str:
        """Delete a schedule; its name is free again and its history stays in the log."""
        return self.schedules.delete(name_or_id)

    # -- workflows -------------------------------------------------------------------------------

    def apply_workflow(self, raw: Mapping[str, Any]) -> AppliedWorkflow:
        """Create a workflow (native ``tasks`` or DataOS ``workflow.dag`` shape) or record its new version."""
        return self.workflows.apply(raw)

    def apply_workflow_file(self, path: str | Path) -> AppliedWorkflow:
        """``apply_workflow`` from a JSON or YAML file."""
        return self.workflows.apply(load_document(path))

    def list_workflows(self) -> list[dict[str, Any]]:
        """Every workflow, by name."""
        return self.workflows.all()

    def get_workflow(self, name: str) -> dict[str, Any]:
        """The workflow named ``name`` with every version; ``NotFound`` if there is none."""
        return self.workflows.get(name)

    def plan_workflow(self, name: str, cluster: str | None = None, logical_date: str | None = None) -> Plan:
        """What a run would run, resolved and checked, tasks by level; appends nothing."""
        return self.workflows.plan(name, cluster, logical_date)

    def workflow_start_batch(
        self, name: str, cluster: str | None = None, logical_date: str | None = None, run_id: str | None = None
    ) -> tuple[str, list[NewEvent], dict[str, int]]:
        """The events that start a run of workflow ``name``: (workflow run id, batch, expected versions).

        ``run_id``: the workflow run's id (a schedule derives it from its tick); a new UUID by default.
        """
        return self.workflows.start_batch(name, cluster, logical_date, run_id)

    def run_workflow(self, name: str, cluster: str | None = None, logical_date: str | None = None) -> str:
        """Start a run of the workflow's latest version; returns the workflow run id.

        ``cluster`` is for tasks whose file names none; ``logical_date`` defaults to now.
        """
        return self.workflows.start(name, cluster, logical_date)

    def get_workflow_run(self, workflow_run_id: str, as_of: str = "+") -> dict[str, Any]:
        """The workflow run as ``workflow status --json`` shows it (as it was at position ``as_of``)."""
        return self.workflows.view(workflow_run_id, as_of)

    def list_workflow_runs(
        self, workflow: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Workflow runs newest first, with task counts by status."""
        return self.workflows.list_runs(workflow, status, limit)

    def cancel_workflow_run(self, workflow_run_id: str) -> dict[str, Any]:
        """Cancel a workflow run: running tasks are cancelled, pending ones never start."""
        return self.workflows.cancel(workflow_run_id)

    def rerun_workflow_task(self, workflow_run_id: str, task: str, downstream: bool = False) -> dict[str, Any]:
        """Run one task of an ended workflow run again (with ``downstream``: and everything after it)."""
        return self.workflows.rerun(workflow_run_id, task, downstream)

    def repair_workflow_run(self, workflow_run_id: str) -> dict[str, Any]:
        """Rerun every task that did not succeed, and what is downstream of them."""
        return self.workflows.rerun(workflow_run_id, None, False)

    def wait_workflow_run(self, workflow_run_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until the workflow run has ended and none of its tasks is still running."""
        return self.workflows.wait(workflow_run_id, timeout)

    # -- the built-in library ------------------------------------------------------------------------

    def list_builtins(self) -> list[dict[str, Any]]:
        """Every built-in script shipped with jobledger (each version), with its parameters."""
        return self.library.list()

    def get_builtin(self, ref: str) -> dict[str, Any]:
        """One built-in, ``NAME`` (its latest version) or ``NAME@VERSION``, with its parameters."""
        return self.library.show(ref)

    def use_builtin(
        self,
        ref: str,
        workflow: str,
        params: Mapping[str, Any],
        cron: str | None = None,
        timezone: str = "UTC",
        cluster: str | None = None,
    ) -> UsedBuiltin:
        """EnOS's "use the program": a workflow running the built-in with ``params``, scheduled by ``cron``."""
        return self.library.use(ref, workflow, params, cron, timezone, cluster)

    # -- pre-runs --------------------------------------------------------------------------------

    def prerun_workflow(self, name: str, cluster: str | None = None) -> str:
        """Run the workflow once for real with every output in its depot's scratch; returns the workflow run id."""
        return self.preruns.start(name, cluster)

    def prerun_report(self, workflow_run_id: str) -> dict[str, Any]:
        """A pre-run's tasks' outcomes and, per output, rows and schema beside the last real run's."""
        return self.preruns.report(workflow_run_id)

    def clean_preruns(self, name: str) -> list[dict[str, Any]]:
        """Remove the scratch outputs of every ended pre-run of workflow ``name``."""
        return self.preruns.clean(name)
