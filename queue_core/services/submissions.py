"""Submitting runs: of a definition (with an idempotency key, a logical date) or of one SQL query."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from queue_core.domain.arrays import check_array_size
from queue_core.domain.clusters import DEFAULT_CLUSTER, DEFAULT_ENGINE
from queue_core.domain.definitions import spec_of
from queue_core.domain.gate import is_gated
from queue_core.domain.names import IDEMPOTENCY_KIND
from queue_core.domain.runs import apply_run
from queue_core.errors import AlreadyExists, ConcurrencyError, IdempotencyKeyReused, InvalidInput, NotFound
from queue_core.eventlog.aggregates import load_state
from queue_core.eventlog.events import NewEvent, RunSubmitted
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import ReadModels
from queue_core.services.catalog import Catalog
from queue_core.services.names import owner_of, with_claim
from queue_core.services.pools import check_pool_of
from queue_core.services.resources import ResourceStore
from queue_core.specs import checks
from queue_core.specs.definitions import check_args, check_env, check_text, check_timeout
from queue_core.specs.depots import WAREHOUSE_DEPOTS
from queue_core.specs.engines import on_cluster_engine
from queue_core.specs.logical_dates import normalize_logical_date
from queue_core.specs.run_control import check_priority
from queue_core.specs.tags import merge_tags, normalize_tags

__all__ = ["SQL_QUERY", "Submissions"]

SQL_QUERY = "(sql)"  # the definition name a `jobledger sql` run shows: it has no definition
MAX_IDEMPOTENCY_KEY = 256
MAX_REF_CHARS = 256


@dataclass(frozen=True)
class _Request:
    """What a submit asks on top of the definition: the parameters an idempotency key is held to."""

    cluster: str | None
    args: str | None
    env: Mapping[str, str] | None
    timeout: float | None
    ref: str | None
    priority: int | None = None
    tags: tuple[str, ...] = ()


def _check_ref(ref: Any) -> str:
    """A branch, tag or commit: never an option to git, no whitespace."""
    if not isinstance(ref, str) or not ref or ref.startswith("-") or any(c.isspace() for c in ref):
        raise InvalidInput("must be a branch, tag or commit", "ref")
    if len(ref) > MAX_REF_CHARS:
        raise InvalidInput(f"must be at most {MAX_REF_CHARS} characters", "ref")
    check_text(ref, "ref")
    return ref


def _comparable(job: Mapping[str, Any]) -> dict[str, Any]:
    """A run's job as an idempotency key compares it: a resource source without the version pinned at submit
    (a resource registered again since is not another parameter)."""
    if job["source"]["type"] != "RESOURCE":
        return dict(job)
    return {**job, "source": {**job["source"], "sourceDef": {**job["source"]["sourceDef"], "version": None}}}


class Submissions:
    """Turns a submit into the events that record it, checked first, and appends them."""

    def __init__(self, store: EventStore, read_models: ReadModels, catalog: Catalog, resources: ResourceStore) -> None:
        self.store = store
        self.read_models = read_models
        self.catalog = catalog
        self.resources = resources

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
        """Submit a run of the definition's latest version (or of ``version``); returns the run id.

        ``logical_date`` (``YYYY-MM-DD`` or an ISO time) is the date the run stands for: recorded on the
        run, given to the job as ``JOBLEDGER_LOGICAL_DATE``, matched by workflow references. ``ref``: the
        branch, tag or commit of a GIT source for this run only (recorded in the run's job); ``priority`` (0-9)
        instead of the definition's, recorded in the run's job too; ``tags`` are added to the definition's. An
        idempotency key already held returns its run, or raises ``IdempotencyKeyReused`` if the parameters differ.
        ``array`` (2 to 10,000) makes the run an array job's parent: the dispatcher submits that many children.
        """
        for _ in range(3):
            run_id, batch, expected = self.submission_batch(
                definition,
                cluster,
                args,
                env,
                timeout,
                idempotency_key,
                logical_date,
                None,
                version,
                ref,
                priority,
                tags,
                array,
            )
            if not batch:
                return run_id  # the idempotency key is held: its run
            self._check_engine(definition, batch)
            try:
                self.store.append(batch, expected)
                return run_id
            except ConcurrencyError:
                if idempotency_key is None:
                    raise
                continue  # another submitter holds the key now: the next look returns its run
        raise AlreadyExists(f"idempotency key {idempotency_key!r} is contended; try again")

    def _check_engine(self, definition: str, batch: list[NewEvent]) -> None:
        """``SparkUnavailable`` when the run is to go to Spark (its definition's engine, or its cluster's) and
        this machine lacks what Spark needs: PySpark, Java, the JDBC driver if it has a PostgreSQL depot, and the
        s3a connector if it has an S3 depot and the master is not local."""
        job = next((e.event.job for e in batch if isinstance(e.event, RunSubmitted)), None)
        if job is None or job.get("engine") != "spark":
            return
        from queue_core.services.spark import require_spark

        self.read_models.catch_up()
        types = {d["name"]: d["type"] for d in self.read_models.all("depots").values() if d}
        pipeline = job.get("pipeline") or {}
        named = {x["dataset"]["depot"] for x in [*pipeline.get("inputs", ()), *pipeline.get("outputs", ())]}
        kinds = {types.get(d) for d in named}
        require_spark(f"definition {definition}", postgres="postgres" in kinds, s3="s3" in kinds)

    def submission_batch(
        self,
        definition: str,
        cluster: str | None = None,
        args: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        idempotency_key: str | None = None,
        logical_date: str | None = None,
        run_id: str | None = None,
        version: int | None = None,
        ref: str | None = None,
        priority: int | None = None,
        tags: Sequence[str] = (),
        array: int | None = None,
    ) -> tuple[str, list[NewEvent], dict[str, int]]:
        """The events that submit a run, not appended: (run id, batch, expected versions).

        Checks everything ``submit`` checks. ``run_id`` (default: a new UUID) lets a caller derive it,
        as the scheduler does from a schedule's tick. When ``idempotency_key`` is already held the
        batch is empty and the run id is the holder's.
        """
        doc = self.catalog.get_definition(definition)
        return self.submission_of(
            doc, cluster, args, env, timeout, idempotency_key, logical_date, run_id, version, ref, priority, tags, array
        )

    def submission_of(
        self,
        doc: dict[str, Any],
        cluster: str | None = None,
        args: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        idempotency_key: str | None = None,
        logical_date: str | None = None,
        run_id: str | None = None,
        version: int | None = None,
        ref: str | None = None,
        priority: int | None = None,
        tags: Sequence[str] = (),
        array: int | None = None,
    ) -> tuple[str, list[NewEvent], dict[str, int]]:
        """``submission_batch`` for a definition document already loaded (a timer pass loads each once)."""
        if doc["deleted"]:
            raise NotFound(f"definition {doc['name']} ({doc['id']}) is deleted")
        if version is not None:
            checks.whole_number(version, "version", 1, what="version number")
        if ref is not None:
            ref = _check_ref(ref)
        if priority is not None:
            priority = check_priority(priority)
        request = _Request(cluster, args, env, timeout, ref, priority, tuple(normalize_tags(list(tags))))
        submitted = self._submitted(doc, version, request)
        submitted = replace(
            submitted, logical_date=None if logical_date is None else normalize_logical_date(logical_date)
        )
        if array is not None:
            if is_gated(submitted.job):
                # The gate holds runs one by one; an array's children are queued together, so neither mixes.
                raise InvalidInput("cannot be used with a concurrency limit or a pool", "array")
            submitted = replace(submitted, array_size=check_array_size(array))
        run_id = run_id or str(uuid.uuid4())
        if idempotency_key is None:
            return run_id, [NewEvent(run_id, submitted)], {run_id: 0}
        if not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
            raise InvalidInput(f"must be 1 to {MAX_IDEMPOTENCY_KEY} characters", "idempotency-key")
        check_text(idempotency_key, "idempotency-key")
        submitted = replace(submitted, idempotency_key=idempotency_key)
        key = f"{doc['id']}/{idempotency_key}"
        owner, claim_version = owner_of(self.store, IDEMPOTENCY_KIND, key)
        if owner:
            self._same_request(owner, doc, version, request, submitted)
            return owner, [], {}
        batch, expected = with_claim(
            IDEMPOTENCY_KIND, key, run_id, claim_version, [NewEvent(run_id, submitted)], {run_id: 0}
        )
        return run_id, batch, expected

    def _submitted(self, doc: dict[str, Any], version: int | None, request: _Request) -> RunSubmitted:
        """The submission of ``doc`` at ``version`` (None: its latest) with the request's overrides applied."""
        spec = spec_of(doc, version)
        cluster_name = request.cluster or (spec["cluster"] or {}).get("name")
        if not cluster_name:
            raise InvalidInput(f"definition {doc['name']} names no cluster; name one", "cluster")
        cluster_doc = self.catalog.get_cluster(cluster_name)
        job = on_cluster_engine(dict(spec["config"]), cluster_doc.get("engine", DEFAULT_ENGINE))
        if spec.get("title") is not None:  # a DataOS entry's, carried so the run shows it (only when given)
            job["title"] = spec["title"]
        if request.args is not None:
            job["args"] = check_args(request.args, "args")
        if request.env:
            job["envVars"] = {**job["envVars"], **check_env(dict(request.env), "env")}
        if request.timeout is not None:
            job["timeout"] = check_timeout(request.timeout, "timeout")
        if request.ref is not None:
            if job["source"]["type"] != "GIT":
                raise InvalidInput(
                    f"applies to GIT sources only; definition {doc['name']} fetches from {job['source']['type']}", "ref"
                )
            job["source"] = {**job["source"], "sourceDef": {**job["source"]["sourceDef"], "reference": request.ref}}
        if job["source"]["type"] == "RESOURCE" or job.get("configFiles"):
            job = self.resources.pinned(job)
        if request.priority is not None:
            job["priority"] = request.priority
        check_pool_of(self.store, job, "config")  # deleted since the definition named it: refused, not stuck
        return RunSubmitted(
            definition_id=doc["id"],
            definition=doc["name"],
            definition_version=version or doc["version"],
            cluster=cluster_doc["name"],
            job=job,
            tags=tuple(merge_tags(spec.get("tags", ()), request.tags)),  # absent: defined without tags
        )

    def _same_request(
        self, owner: str, doc: dict[str, Any], version: int | None, request: _Request, submitted: RunSubmitted
    ) -> None:
        """Refuse a held idempotency key asked with other parameters (Stripe's rule), naming its run.

        The request is compared as it would apply to the version the key's run ran: a key reused after the
        definition changed, with the same parameters, still gives its run. A run no longer in the hot store
        is not compared.
        """
        held, _ = load_state(self.store, owner, apply_run)
        if held is None:
            return
        if version is None and held["definition_version"] != submitted.definition_version:
            submitted = replace(
                self._submitted(doc, held["definition_version"], request), array_size=submitted.array_size
            )
        then = (
            held["definition_version"],
            held["cluster"],
            held["logical_date"],
            _comparable(held["job"]),
            held["tags"],
            None if held["array"] is None else held["array"]["size"],
        )
        now = (
            submitted.definition_version,
            submitted.cluster,
            submitted.logical_date,
            _comparable(submitted.job),
            list(submitted.tags),
            submitted.array_size,
        )
        if then != now:
            raise IdempotencyKeyReused(
                f"idempotency key {submitted.idempotency_key!r} was used by run {owner} with other parameters",
                owner,
            )

    def sql(
        self,
        query: str,
        inputs: Mapping[str, str] | None = None,
        output: str | None = None,
        save_mode: str = "errorIfExists",
        cluster: str = DEFAULT_CLUSTER,
    ) -> str:
        """Submit one SQL query as a run of no definition; ``inputs``: view -> ``ADDRESS[:FORMAT]``.

        The query is step ``result``; with ``output`` (``ADDRESS[:FORMAT]``) it is written there,
        without one the run's result previews it. Returns the run id.
        """
        self.read_models.catch_up()
        depot_types = {d["name"]: d["type"] for d in self.read_models.all("depots").values() if d}

        def split(given: str, file_default: str) -> tuple[str, str]:
            address, _, fmt = given.rpartition(":")
            if not address or "/" in fmt:
                address, fmt = given, ""
            depot = address.partition("://")[2].partition(":")[0]
            return address, fmt or ("table" if depot_types.get(depot) in WAREHOUSE_DEPOTS else file_default)

        job_inputs = []
        for name, given in (inputs or {}).items():
            address, fmt = split(given, "csv")
            job_inputs.append({"name": name, "dataset": address, "format": fmt})
        outputs = []
        if output is not None:
            address, fmt = split(output, "parquet")
            outputs.append({"name": "result", "dataset": address, "format": fmt, "options": {"saveMode": save_mode}})
        pipeline = {
            "inputs": job_inputs,
            "steps": [{"sequence": [{"name": "result", "sql": query}]}],
            "outputs": outputs,
        }
        checked = self.catalog.checked_spec({"name": "sql", "config": {"type": "SQL", "pipeline": pipeline}})
        cluster_doc = self.catalog.get_cluster(cluster)
        run_id = str(uuid.uuid4())
        submitted = RunSubmitted(
            definition_id="",
            definition=SQL_QUERY,
            definition_version=0,
            cluster=cluster_doc["name"],
            job=checked["config"],
        )
        self.store.append([NewEvent(run_id, submitted)], {run_id: 0})
        return run_id
