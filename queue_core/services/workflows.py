"""The workflow use cases: apply, plan, start, status, wait, cancel, rerun and repair."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from queue_core.dag import levels
from queue_core.domain.clusters import CLUSTER_KIND, DEFAULT_CLUSTER
from queue_core.domain.definitions import spec_of
from queue_core.domain.gate import is_gated
from queue_core.domain.names import is_id
from queue_core.domain.runs import CANCELLED_BY_USER, TERMINAL, apply_run, job_title
from queue_core.domain.schedules import stamp
from queue_core.domain.workflow_advance import rerun_tasks
from queue_core.domain.workflow_runs import apply_workflow_run, is_active, is_going
from queue_core.domain.workflows import WORKFLOW_KIND, apply_workflow, decide_apply, workflow_spec_of
from queue_core.errors import (
    AlreadyExists,
    AlreadyTerminal,
    ConcurrencyError,
    InvalidInput,
    NotFound,
    Quarantined,
    WaitTimeout,
)
from queue_core.eventlog.aggregates import load_state, load_states
from queue_core.eventlog.events import (
    Event,
    NewEvent,
    RunCancelled,
    TaskRerunRequested,
    WorkflowRunCancelled,
    WorkflowRunStarted,
)
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import ReadModels
from queue_core.services.catalog import Catalog
from queue_core.services.names import owner_of, with_claim
from queue_core.services.notifications import check_secrets_exist
from queue_core.services.pools import check_pool_of
from queue_core.services.resources import ResourceStore
from queue_core.specs.builtins import BUILTIN, DATA_SYNC
from queue_core.specs.definitions import check_name
from queue_core.specs.logical_dates import normalize_logical_date
from queue_core.specs.run_if import ALL_SUCCESS
from queue_core.specs.tags import merge_tags
from queue_core.specs.workflows import TASK_RUN_CONTROL, normalize_workflow, task_graph
from queue_core.timefmt import parse_utc

__all__ = ["AppliedWorkflow", "Plan", "WorkflowService", "workflow_view"]

Doc = dict[str, Any]
_RUN_KEYS = (
    "id", "workflow", "workflow_version", "logical_date", "status", "reason", "started_at", "finished_at", "prerun",
)  # fmt: skip


@dataclass(frozen=True)
class AppliedWorkflow:
    """The outcome of ``workflow apply``: the workflow's id, its latest version, whether this call changed it."""

    id: str
    name: str
    version: int
    created: bool
    changed: bool


@dataclass(frozen=True)
class Plan:
    """What a workflow run would run: every task resolved, and the tasks by level (each level in parallel)."""

    workflow_id: str
    workflow: str
    workflow_version: int
    logical_date: str
    tasks: dict[str, Doc]
    levels: list[list[str]]
    references: list[dict[str, str]]
    concurrency: int | None
    fail_fast: bool
    reference_timeout: float | None = None
    max_concurrent_runs: int | None = None

    def to_json_dict(self) -> Doc:
        tasks = {
            name: {
                k: t[k] for k in ("definition", "definition_version", "cluster", "depends_on", "run_if", "condition")
            }
            | {k: t[k] for k in ("array", "for_each", "n_to_n") if k in t}  # only an array's, a for-each's
            for name, t in self.tasks.items()
        }
        return {
            "workflow": self.workflow,
            "workflow_version": self.workflow_version,
            "logical_date": self.logical_date,
            "levels": self.levels,
            "tasks": tasks,
            "references": self.references,
            "referenceTimeout": self.reference_timeout,
            "concurrency": self.concurrency,
            "failFast": self.fail_fast,
        }


def _duration(start: str | None, end: str | None) -> float | None:
    if start is None:
        return None
    stop = parse_utc(end) if end else datetime.now(UTC)
    return round((stop - parse_utc(start)).total_seconds(), 3)


def workflow_view(doc: Doc, children: Mapping[str, Doc]) -> Doc:
    """The workflow run as ``workflow status --json`` prints it; running tasks show their child run's state."""
    tasks: dict[str, Doc] = {}
    for name, task in doc["tasks"].items():
        status, reason, attempts = task["status"], task["reason"], task["attempts"]
        child = children.get(task["run"]) if task["run"] else None
        if child is not None:
            attempts = len(child["attempts"])
            if is_active(task):
                status, reason = child["status"], child["reason"]
        tasks[name] = {
            "status": status,
            "reason": reason,
            "run": task["run"],
            "attempts": attempts,
            "runs": list(task["runs"]),
            "title": job_title(doc["plan"][name]["job"], "title"),
            "depends_on": list(doc["plan"][name]["depends_on"]),
            "run_if": doc["plan"][name]["run_if"],
            # The branch this task runs on: condition task -> "true" or "false" (a plan from before branches has none).
            "branches": dict(doc["plan"][name].get("outcomes", {})),
            "outcome": task["outcome"],
            "values": task["values"],
            "submitted_at": task["submitted_at"],
            "finished_at": task["finished_at"],
            "duration": _duration(task["submitted_at"], task["finished_at"]),
        }
    view = {key: doc[key] for key in _RUN_KEYS}
    view["references"] = [dict(ref) for ref in doc["references"]]
    view["reruns"] = [dict(r) for r in doc["reruns"]]
    view["tasks"] = tasks
    view["title"] = next((t for p in doc["plan"].values() if (t := job_title(p["job"], "workflow_title"))), None)
    return view


class WorkflowService:
    """Workflows and their runs, on one store."""

    def __init__(self, store: EventStore, read_models: ReadModels, catalog: Catalog, resources: ResourceStore) -> None:
        self.store = store
        self.read_models = read_models
        self.catalog = catalog
        self.resources = resources

    # -- workflow definitions -----------------------------------------------------------------

    def _owner(self, kind: str, name: str, until: str = "+") -> tuple[str | None, int]:
        return owner_of(self.store, kind, name, until)

    def get(self, name: str, as_of: str = "+") -> Doc:
        owner, _ = self._owner(WORKFLOW_KIND, name, as_of)
        doc = load_state(self.store, owner, apply_workflow, as_of)[0] if owner else None
        if doc is None:
            raise NotFound(f"no workflow named {name!r}")
        return doc

    def all(self) -> list[Doc]:
        self.read_models.catch_up()
        return sorted((d for d in self.read_models.all("workflows").values() if d), key=lambda d: d["name"])

    def _check(self, spec: Doc) -> tuple[list[NewEvent], dict[str, int]]:
        """Every name the workflow uses exists (the clusters it names are registered on the way)."""
        for name, task in spec["tasks"].items():
            if task["definition"] is not None:
                doc = self._definition(task["definition"], f"tasks.{name}.definition")
                if task["definition_version"] is not None:
                    spec_of(doc, task["definition_version"])
            elif task["job"] is not None and task["job"]["config"].get("pipeline") is not None:
                self.catalog.check_pipeline(task["job"]["config"]["pipeline"])
            elif task["job"] is not None and task["job"]["config"]["type"] in (DATA_SYNC, BUILTIN):
                self.catalog.check_generated(task["job"]["config"], f"tasks.{name}.job")
            elif task["job"] is not None and task["job"]["config"].get("app") is not None:
                self.catalog.check_app(task["job"]["config"]["app"], f"tasks.{name}.job.app")
            if "pool" in task:
                check_pool_of(self.store, task, f"tasks.{name}")
        for ref in spec["references"]:
            if ref["kind"] == "definition":
                self._definition(ref["name"], "references")
            elif self._owner(WORKFLOW_KIND, ref["name"])[0] is None:
                raise NotFound(f"references: no workflow named {ref['name']!r}")
        self._check_no_reference_circle(spec)
        if "trigger" in spec:
            self.catalog.check_trigger(spec["trigger"])
        registrations: list[NewEvent] = []
        expected: dict[str, int] = {}
        for cluster in sorted({t["cluster"] for t in spec["tasks"].values() if t["cluster"]} - {DEFAULT_CLUSTER}):
            owner, version = self._owner(CLUSTER_KIND, cluster)
            if owner is None:
                batch, versions = self.catalog.cluster_registration(cluster, 1, "local", version)
                registrations += batch
                expected.update(versions)
        return registrations, expected

    def _check_no_reference_circle(self, spec: Doc) -> None:
        """Refuse a workflow whose references lead back to it through other workflows' latest versions:
        each run of the circle would wait for another that waits for it."""
        name = spec["name"]
        came_from: dict[str, str] = {}
        todo = [r["name"] for r in spec["references"] if r["kind"] == "workflow"]
        for ref in todo:
            came_from.setdefault(ref, name)
        while todo:  # iterative: a chain of references is as long as users make it
            current = todo.pop()
            if current == name:
                path = [name]
                while path[-1] != name or len(path) == 1:
                    path.append(came_from[path[-1]])
                shown = " -> ".join(reversed(path))
                raise InvalidInput(f"the workflows' references form a circle: {shown}", "references")
            owner = self._owner(WORKFLOW_KIND, current)[0]
            if owner is None:
                continue
            doc = load_state(self.store, owner, apply_workflow)[0]
            for ref in workflow_spec_of(doc)["references"] if doc else []:
                if ref["kind"] == "workflow" and ref["name"] not in came_from:
                    came_from[ref["name"]] = current
                    todo.append(ref["name"])

    def _definition(self, name: str, field: str) -> Doc:
        try:
            doc = self.catalog.get_definition(name)
        except NotFound:
            raise NotFound(f"{field}: no definition named {name!r}") from None
        if doc["deleted"]:
            raise NotFound(f"{field}: definition {name!r} is deleted")
        return doc

    def apply(self, raw: Any) -> AppliedWorkflow:
        """Create the workflow, or record a new version when its content changed."""
        spec = normalize_workflow(raw)
        check_secrets_exist(self.store, spec.get("notifications"), "notifications")  # absent: none
        registrations, registration_expected = self._check(spec)
        name = spec["name"]
        owner, name_version = self._owner(WORKFLOW_KIND, name)
        doc, version = load_state(self.store, owner, apply_workflow) if owner else (None, 0)
        events = decide_apply(doc, spec)
        if not events:
            assert doc is not None
            return AppliedWorkflow(doc["id"], name, doc["version"], created=False, changed=False)
        workflow_id = owner or str(uuid.uuid4())
        batch = [NewEvent(workflow_id, e) for e in events]
        expected = {workflow_id: version}
        if owner is None:
            batch, expected = with_claim(WORKFLOW_KIND, name, workflow_id, name_version, batch, expected)
        batch += registrations
        expected.update(registration_expected)
        try:
            self.store.append(batch, expected)
        except ConcurrencyError as exc:
            raise AlreadyExists(
                f"workflow {name!r} was changed by another writer at the same moment; apply again"
            ) from exc
        new_version = 1 if doc is None else doc["version"] + 1
        return AppliedWorkflow(workflow_id, name, new_version, created=doc is None, changed=True)

    # -- starting a run -----------------------------------------------------------------------

    def _resolve(self, workflow: Doc, spec: Doc, name: str, cluster: str | None) -> Doc:
        task = spec["tasks"][name]
        # Keys a spec has only when the file said them (run-if and branches): older specs lack them.
        branching = {
            "depends_on": list(task["depends_on"]),
            "run_if": task.get("runIf", ALL_SUCCESS),
            "condition": task.get("condition"),
            "outcomes": dict(task.get("outcomes", {})),
        }
        if task.get("condition") is not None:
            ids = {"definition_id": workflow["id"], "definition": None, "definition_version": workflow["version"]}
            return {**ids, "cluster": None, "job": None, **branching}
        if task["definition"] is not None:
            definition = self._definition(task["definition"], f"task {name}")
            version = task["definition_version"] or definition["version"]
            dspec = spec_of(definition, version)
            ids = {"definition_id": definition["id"], "definition": definition["name"], "definition_version": version}
        else:
            dspec = task["job"]
            ids = {
                "definition_id": workflow["id"],
                "definition": f"{workflow['name']}.{name}",
                "definition_version": workflow["version"],
            }
        job = dict(dspec["config"])
        if task["args"] is not None:
            job["args"] = task["args"]
        if task["envVars"]:
            job["envVars"] = {**job["envVars"], **task["envVars"]}
        if job["source"]["type"] == "RESOURCE" or job.get("configFiles"):
            job = self.resources.pinned(job)
        for key in TASK_RUN_CONTROL:
            if key in task:  # the task's over its job's; absent: the job's own, if any
                job[key] = task[key]
        # The titles a DataOS file gave, carried by the job so the runs show them (no event field for them).
        for key, title in (("title", task.get("title") or dspec.get("title")), ("workflow_title", spec.get("title"))):
            if title is not None:
                job[key] = title
        chosen = task["cluster"] or cluster or (dspec.get("cluster") or {}).get("name") or DEFAULT_CLUSTER
        cluster_name = self.catalog.get_cluster(chosen)["name"]
        # The task's runs carry its definition's tags, the task's own and the workflow's (absent: given none).
        tags = merge_tags(dspec.get("tags", ()), task.get("tags", ()), spec.get("tags", ()))
        resolved = {**ids, "cluster": cluster_name, "job": job, **branching, "tags": tags}
        if "array" in task:  # an array task (only when the file said so): its run is the parent of that many
            if is_gated(job):
                raise InvalidInput("cannot be used with a concurrency limit or a pool", f"tasks.{name}.array")
            resolved["array"] = task["array"]
        if "forEach" in task:  # a for-each task: its run is an array parent with a child per input, in windows
            if is_gated(job):
                raise InvalidInput("cannot be used with a concurrency limit or a pool", f"tasks.{name}.forEach")
            resolved["for_each"] = dict(task["forEach"])
        if task.get("n_to_n"):  # upstream array tasks followed child by child
            resolved["n_to_n"] = list(task["n_to_n"])
        return resolved

    def plan(self, name: str, cluster: str | None = None, logical_date: str | None = None) -> Plan:
        """Resolve every task of the workflow's latest version; appends nothing (``--dry-run`` prints it)."""
        if cluster is not None:
            check_name(cluster, "cluster")
        when = normalize_logical_date(logical_date) if logical_date is not None else stamp(datetime.now(UTC))
        workflow = self.get(name)
        spec = workflow_spec_of(workflow)
        tasks = {task: self._resolve(workflow, spec, task, cluster) for task in sorted(spec["tasks"])}
        return Plan(
            workflow["id"],
            workflow["name"],
            workflow["version"],
            when,
            tasks,
            levels(task_graph(spec)),
            [dict(r) for r in spec["references"]],
            spec["concurrency"],
            spec["failFast"],
            spec.get("referenceTimeout"),
            spec.get("maxConcurrentRuns"),  # absent: applied without one
        )

    def start_batch(
        self, name: str, cluster: str | None = None, logical_date: str | None = None, run_id: str | None = None
    ) -> tuple[str, list[NewEvent], dict[str, int]]:
        plan = self.plan(name, cluster, logical_date)
        run_id = run_id or str(uuid.uuid4())
        started = WorkflowRunStarted(
            workflow_id=plan.workflow_id,
            workflow=plan.workflow,
            workflow_version=plan.workflow_version,
            logical_date=plan.logical_date,
            tasks=plan.tasks,
            references=tuple(plan.references),
            concurrency=plan.concurrency,
            fail_fast=plan.fail_fast,
            reference_timeout=plan.reference_timeout,
            max_concurrent_runs=plan.max_concurrent_runs,
        )
        return run_id, [NewEvent(run_id, started)], {run_id: 0}

    def start(self, name: str, cluster: str | None = None, logical_date: str | None = None) -> str:
        run_id, batch, expected = self.start_batch(name, cluster, logical_date)
        self.store.append(batch, expected)
        return run_id

    # -- a run --------------------------------------------------------------------------------

    def load_run(self, run_id: str, as_of: str = "+") -> tuple[Doc, int]:
        doc, version = load_state(self.store, run_id, apply_workflow_run, as_of) if is_id(run_id) else (None, 0)
        if doc is None:
            raise NotFound(f"no workflow run with id {run_id}" + ("" if as_of == "+" else " at that point"))
        return doc, version

    def view(self, run_id: str, as_of: str = "+") -> Doc:
        """The workflow run as ``workflow status --json`` shows it; a quarantined one as its last good state."""
        quarantined: Quarantined | None = None
        try:
            doc, _ = self.load_run(run_id, as_of)
        except Quarantined as exc:
            doc, quarantined = self._last_good(exc, as_of), exc
        runs = [t["run"] for t in doc["tasks"].values() if t["run"]]
        children = {run: child for run, (child, _) in load_states(self.store, runs, apply_run, as_of).items()}
        view = workflow_view(doc, children)
        if quarantined is not None:
            view["quarantined"] = str(quarantined)
        return view

    def _last_good(self, exc: Quarantined, as_of: str = "+") -> Doc:
        """The read models' document of a quarantined workflow run: its state before the event that does not fold."""
        if as_of != "+":
            raise exc
        self.read_models.catch_up()
        doc = self.read_models.get("workflow_runs", exc.aggregate)
        if doc is None:
            raise exc
        return doc

    def wait(self, run_id: str, timeout: float | None = None) -> Doc:
        """Block until the workflow run has ended and none of its tasks is still running.

        Folds the run's own events as they arrive (one blocking read each), and builds the full
        view with its child runs only once, at the end.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        self.load_run(run_id)  # NotFound for an unknown id
        last = "0"
        doc: Doc | None = None
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            block = 1000 if remaining is None else max(1, min(1000, int(remaining * 1000)))
            for rec in self.store.follow(last, block, count=1000, aggregate=run_id):
                last = rec.position
                doc = apply_workflow_run(doc, rec)
            if doc is not None and not is_going(doc):
                return self.view(run_id)
            if deadline is not None and time.monotonic() >= deadline:
                status = doc["status"] if doc else "PENDING"
                raise WaitTimeout(f"workflow run {run_id} is still {status} after {timeout:g} s")

    def list_runs(self, workflow: str | None = None, status: str | None = None, limit: int = 50) -> list[Doc]:
        """Workflow runs newest first (summaries: no tasks), filtered by workflow name and status."""
        models = self.read_models
        models.catch_up()
        index = f"workflow:{workflow}" if workflow else (f"status:{status.upper()}" if status else "all")
        out: list[Doc] = []
        offset = 0
        while len(out) < limit:
            ids = models.newest("workflow_runs", index, offset, 500)
            if not ids:
                break
            for doc in models.get_many("workflow_runs", ids):
                if doc and (status is None or doc["status"] == status.upper()):
                    counts: dict[str, int] = {}
                    for task in doc["tasks"].values():
                        counts[task["status"]] = counts.get(task["status"], 0) + 1
                    out.append({**{k: doc[k] for k in _RUN_KEYS}, "tasks": counts})
            offset += 500
        return out[:limit]

    def cancel(self, run_id: str) -> Doc:
        """Cancel: nothing new starts, and every running task's run is cancelled in the same append."""
        for _ in range(10):
            try:
                doc, version = self.load_run(run_id)
            except Quarantined as exc:
                # Nothing decides from a history that cannot be folded: the operator's cancel is decided on the
                # last good state and recorded after it; a cancel is folded even into a quarantined entity.
                doc, version = self._last_good(exc), self.store.version(run_id)
            if doc["status"] in TERMINAL:
                raise_terminal(doc)
            batch = [NewEvent(run_id, WorkflowRunCancelled(reason=CANCELLED_BY_USER))]
            expected = {run_id: version}
            active = [task["run"] for task in doc["tasks"].values() if is_active(task)]
            for child_id, (child, child_version) in load_states(self.store, active, apply_run).items():
                if child["status"] not in TERMINAL:
                    cancelled: Event = RunCancelled(reason=CANCELLED_BY_USER, attempt=child["attempt"])
                    batch.append(NewEvent(child_id, cancelled))
                    expected[child_id] = child_version
            try:
                self.store.append(batch, expected)
            except ConcurrencyError:
                continue  # a task moved (started, ended, was submitted): decide again
            return self.view(run_id)
        raise AlreadyExists(f"workflow run {run_id} kept changing; cancel again")

    def rerun(self, run_id: str, task: str | None, downstream: bool) -> Doc:
        """Run ``task`` again (with ``downstream``, everything after it too), or with no task repair the run."""
        mode = "repair" if task is None else ("downstream" if downstream else "task")
        for _ in range(10):
            doc, version = self.load_run(run_id)
            tasks = rerun_tasks(doc, task, downstream)
            try:
                self.store.append([NewEvent(run_id, TaskRerunRequested(tasks=tasks, mode=mode))], {run_id: version})
            except ConcurrencyError:
                continue
            return self.view(run_id)
        raise AlreadyExists(f"workflow run {run_id} kept changing; try again")


def raise_terminal(doc: Doc) -> None:
    reason = f" ({doc['reason']})" if doc.get("reason") else ""
    raise AlreadyTerminal(f"workflow run {doc['id']} already ended: {doc['status']}{reason}", doc["status"])
