"""Definitions and clusters: define, revise, delete and look them up by name or id."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from queue_core.domain.clusters import CLUSTER_KIND, DEFAULT_CLUSTER, DEFAULT_ENGINE, apply_cluster, builtin_default
from queue_core.domain.definitions import DEFINITION_KIND, apply_definition, decide_define, deleted_event, spec_of
from queue_core.domain.names import is_id, name_aggregate
from queue_core.domain.secrets import secret_refs
from queue_core.errors import AlreadyExists, ConcurrencyError, InvalidInput, NotFound, Remedy
from queue_core.eventlog.aggregates import load_state
from queue_core.eventlog.events import ClusterRegistered, NameReleased, NewEvent
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.history import Change, diff_specs
from queue_core.readmodels.materialized import ReadModels
from queue_core.services.names import owner_of, with_claim
from queue_core.services.notifications import check_secrets_exist
from queue_core.services.pools import check_pool_of
from queue_core.services.schemas import check_schemas
from queue_core.specs.builtins import BUILTIN, DATA_SYNC, job_pipeline
from queue_core.specs.definitions import MAX_WORKERS, check_name, normalize_definition
from queue_core.specs.depots import FILE_DEPOTS
from queue_core.specs.documents import load_document
from queue_core.specs.engines import check_engine
from queue_core.specs.pipelines import check_depots, workflow_definitions
from queue_core.specs.triggers import FILES, trigger_depots

__all__ = ["Catalog", "DefineResult"]


@dataclass(frozen=True)
class DefineResult:
    """The outcome of ``define``: the definition's id, its latest version and whether this call changed it."""

    id: str
    name: str
    version: int
    created: bool
    changed: bool


class Catalog:
    """The definitions and clusters of one store."""

    def __init__(self, store: EventStore, read_models: ReadModels) -> None:
        self.store = store
        self.read_models = read_models

    # -- definitions ----------------------------------------------------------------------------

    def define_file(self, path: str | Path) -> DefineResult:
        """Create or revise a definition from a JSON or YAML file."""
        return self.define(load_document(path))

    def define_document(self, path: str | Path) -> list[DefineResult]:
        """Define from a file: one definition, or one per SQL job of a DataOS workflow (all checked first)."""
        doc = load_document(path)
        if not (isinstance(doc, Mapping) and doc.get("type") == "workflow"):
            return [self.define(doc)]
        specs = [self.checked_spec(raw) for raw in workflow_definitions(doc)]
        return [self._define_checked(spec) for spec in specs]

    def checked_spec(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """The normalized definition, its pipeline checked against the depots there are now."""
        spec = normalize_definition(raw)
        check_pool_of(self.store, spec["config"], "config")
        check_secrets_exist(self.store, spec["config"].get("notifications"), "config.notifications")
        pipeline = spec["config"].get("pipeline")
        if pipeline is not None:
            self.check_pipeline(pipeline)
        if spec["config"]["type"] in (DATA_SYNC, BUILTIN):
            self.check_generated(spec["config"])
        if "trigger" in spec:
            self.check_trigger(spec["trigger"])
        if "app" in spec["config"]:
            self.check_app(spec["config"]["app"])
        return spec

    def check_app(self, app: Mapping[str, Any], field: str = "config.app") -> None:
        """Refuse an EXTERNAL_APP whose headers or body name a secret that is not set (never reading a value)."""
        for name in dict.fromkeys(secret_refs(app)):
            if not self.store.redis.hexists(self.store.keys.secrets, name):
                said = f"{field}: no secret named {name!r}; set it first"
                raise NotFound(said, remedy=Remedy.SET_SECRET, subject=name)

    def check_trigger(self, trigger: Mapping[str, Any]) -> None:
        """Refuse a trigger naming a depot that does not exist, or watching files in a depot that holds none."""
        self.read_models.catch_up()
        depots = {d["name"]: d["type"] for d in self.read_models.all("depots").values() if d}
        field = "trigger.files.depot" if trigger["kind"] == FILES else "trigger.datasets"
        for depot in trigger_depots(dict(trigger)):
            if depot not in depots:
                raise NotFound(f"{field}: no depot named {depot!r}")
            if trigger["kind"] == FILES and depots[depot] not in FILE_DEPOTS:
                raise InvalidInput(
                    f"depot {depot!r} is a {depots[depot]} depot; files arrive in local or s3 ones", field
                )

    def check_pipeline(self, pipeline: Mapping[str, Any]) -> None:
        """Refuse a pipeline naming a depot that does not exist or a schema file that cannot be read."""
        self.read_models.catch_up()
        depots = {d["name"]: d for d in self.read_models.all("depots").values() if d}
        check_depots(pipeline, {name: d["type"] for name, d in depots.items()})
        check_schemas(pipeline, depots)

    def check_generated(self, job: Mapping[str, Any], field: str = "config") -> None:
        """Refuse a DATA_SYNC or BUILTIN job whose datasets name a depot there is not, or one that cannot hold them."""
        self.read_models.catch_up()
        types = {d["name"]: d["type"] for d in self.read_models.all("depots").values() if d}
        section = f"{field}.sync" if job["type"] == DATA_SYNC else f"{field}.params"
        try:
            check_depots(job_pipeline(job, types), types)
        except InvalidInput as exc:
            raise InvalidInput(exc.detail, section, remedy=exc.remedy, subject=exc.subject) from None

    def define(self, raw: Mapping[str, Any]) -> DefineResult:
        """Create the definition, or append a new version if its name is live and its content changed."""
        return self._define_checked(self.checked_spec(raw))

    def _define_checked(self, spec: dict[str, Any]) -> DefineResult:
        name = spec["name"]
        owner, name_version = owner_of(self.store, DEFINITION_KIND, name)
        doc, version = load_state(self.store, owner, apply_definition) if owner else (None, 0)
        events = decide_define(doc, spec)
        cluster_events, cluster_expected = self._cluster_events_for(spec)
        if not events:
            assert doc is not None
            return DefineResult(doc["id"], name, doc["version"], created=False, changed=False)
        definition_id = owner or str(uuid.uuid4())
        batch = [NewEvent(definition_id, e) for e in events]
        expected = {definition_id: version, **cluster_expected}
        if owner is None:
            batch, expected = with_claim(DEFINITION_KIND, name, definition_id, name_version, batch, expected)
        batch += cluster_events
        try:
            self.store.append(batch, expected)
        except ConcurrencyError as exc:
            if owner is None and exc.aggregate == name_aggregate(DEFINITION_KIND, name):
                raise AlreadyExists(f"definition {name!r} was just created by another writer") from exc
            raise AlreadyExists(
                f"definition {name!r} was changed by another writer at the same moment; run the command again"
            ) from exc
        new_version = 1 if doc is None else doc["version"] + 1
        return DefineResult(definition_id, name, new_version, created=doc is None, changed=True)

    def _cluster_events_for(self, spec: Mapping[str, Any]) -> tuple[list[NewEvent], dict[str, int]]:
        section = spec.get("cluster")
        if not section or section["name"] == DEFAULT_CLUSTER:
            return [], {}
        owner, version = owner_of(self.store, CLUSTER_KIND, section["name"])
        if owner:
            return [], {}
        return self.cluster_registration(
            section["name"], section["workersQuantity"], section["instanceType"], version, section.get("engine")
        )

    def cluster_registration(
        self, name: str, workers: int, instance_type: str, name_version: int, engine: str | None = None
    ) -> tuple[list[NewEvent], dict[str, int]]:
        cluster_id = str(uuid.uuid4())
        registered = NewEvent(
            cluster_id,
            ClusterRegistered(name=name, workers=workers, instance_type=instance_type, engine=engine or DEFAULT_ENGINE),
        )
        return with_claim(CLUSTER_KIND, name, cluster_id, name_version, [registered], {cluster_id: 0})

    def _definition_id(self, name_or_id: str, until: str = "+") -> str:
        if is_id(name_or_id):
            if self.store.load(name_or_id, until):
                return name_or_id
            raise NotFound(f"no definition with id {name_or_id}" + ("" if until == "+" else " at that point"))
        owner, _ = owner_of(self.store, DEFINITION_KIND, name_or_id, until)
        if owner is None:
            raise NotFound(f"no definition named {name_or_id!r}")
        return owner

    def get_definition(self, name_or_id: str, as_of: str = "+") -> dict[str, Any]:
        """The definition with every version (as of position ``as_of``); a deleted one stays readable by UUID."""
        definition_id = self._definition_id(name_or_id, as_of)
        doc, _ = load_state(self.store, definition_id, apply_definition, as_of)
        if doc is None:
            raise NotFound(f"no definition with id {name_or_id}")
        return doc

    def diff(self, name_or_id: str, old: int, new: int) -> list[Change]:
        """What changed in a definition from version ``old`` to version ``new``."""
        doc = self.get_definition(name_or_id)
        return diff_specs(spec_of(doc, old), spec_of(doc, new))

    def list_definitions(self, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Live definitions (and deleted ones if asked), by name."""
        self.read_models.catch_up()
        docs = self.read_models.all("definitions").values()
        return sorted((d for d in docs if include_deleted or not d["deleted"]), key=lambda d: (d["name"], d["id"]))

    def delete_definition(self, name_or_id: str) -> str:
        """Delete a live definition; its name becomes free and its history stays in the log."""
        doc = self.get_definition(name_or_id)
        if doc["deleted"]:
            raise NotFound(f"definition {doc['name']} ({doc['id']}) is already deleted")
        _, version = load_state(self.store, doc["id"], apply_definition)
        name_agg = name_aggregate(DEFINITION_KIND, doc["name"])
        _, name_version = owner_of(self.store, DEFINITION_KIND, doc["name"])
        batch = [
            NewEvent(doc["id"], deleted_event(doc)),
            NewEvent(name_agg, NameReleased(kind=DEFINITION_KIND, name=doc["name"], owner=doc["id"])),
        ]
        try:
            self.store.append(batch, {doc["id"]: version, name_agg: name_version})
        except ConcurrencyError as exc:
            raise AlreadyExists(f"definition {doc['name']} changed while deleting it; run the command again") from exc
        return str(doc["id"])

    # -- clusters -------------------------------------------------------------------------------

    def create_cluster(
        self, name: str, workers: int = 1, instance_type: str = "local", engine: str = DEFAULT_ENGINE
    ) -> str:
        """Register a cluster (an RQ queue of that name); returns its id. ``engine``: the SQL engine its
        pipelines run on when they name none (``duckdb`` or ``spark``)."""
        check_name(name, "cluster")
        engine = check_engine(engine, "engine")
        # 0: the cluster's fleet runs elsewhere (plain ``rq worker`` on other machines); ``up`` starts none.
        if isinstance(workers, bool) or not isinstance(workers, int) or not 0 <= workers <= MAX_WORKERS:
            raise InvalidInput(f"must be a whole number from 0 to {MAX_WORKERS}", "workers")
        if not instance_type or len(instance_type) > 128:
            raise InvalidInput("must be a non-empty string", "instance-type")
        owner, version = owner_of(self.store, CLUSTER_KIND, name)
        if owner or name == DEFAULT_CLUSTER:
            raise AlreadyExists(f"cluster {name!r} already exists")
        batch, expected = self.cluster_registration(name, workers, instance_type, version, engine)
        try:
            self.store.append(batch, expected)
        except ConcurrencyError as exc:
            raise AlreadyExists(f"cluster {name!r} was just created by another writer") from exc
        return batch[1].aggregate

    def list_clusters(self) -> list[dict[str, Any]]:
        """Every cluster, ``default`` first."""
        self.read_models.catch_up()
        docs = sorted(self.read_models.all("clusters").values(), key=lambda d: d["name"])
        return [builtin_default(), *docs]

    def get_cluster(self, name_or_id: str) -> dict[str, Any]:
        default = builtin_default()
        if name_or_id in (default["name"], default["id"]):
            return default
        cluster_id = name_or_id if is_id(name_or_id) else owner_of(self.store, CLUSTER_KIND, name_or_id)[0]
        doc = load_state(self.store, cluster_id, apply_cluster)[0] if cluster_id else None
        if doc is None:
            raise NotFound(f"no cluster named {name_or_id!r}", remedy=Remedy.CREATE_CLUSTER, subject=name_or_id)
        return doc
