"""Pre-runs: a workflow run once for real with every output in scratch, its report, and its scratch removed.

A pre-run is a workflow run marked ``prerun``: the same plan (same code, same inputs), each task's job told so
(``job.prerun`` for the worker, ``JOBLEDGER_PRERUN=1`` for the job, ``X-Jobledger-Prerun: 1`` for an external
app) and its outputs redirected to their depots' scratch namespaces (``specs.preruns``): an inline pipeline's,
a built-in's and a sync's alike, since all three write through the SQL runner. It waits for no reference,
satisfies none, writes no dataset lineage (so fires no trigger), and no schedule or catch-up fired it or
counts it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from queue_core.domain.lineage import dataset_key, fingerprint
from queue_core.domain.runs import apply_run
from queue_core.domain.workflow_runs import is_going
from queue_core.errors import ConcurrencyError, InvalidInput, NotFound
from queue_core.eventlog.aggregates import load_state, load_states
from queue_core.eventlog.events import NewEvent, PrerunScratchRemoved, WorkflowRunStarted
from queue_core.eventlog.store import EventStore
from queue_core.readmodels.materialized import ReadModels
from queue_core.services.depots import get_depot
from queue_core.services.prerun_scratch import remove_scratch
from queue_core.services.secrets import SecretStore
from queue_core.services.workflows import WorkflowService
from queue_core.specs.builtins import BUILTIN, DATA_SYNC, job_depots, job_pipeline
from queue_core.specs.preruns import PRERUN_ENV
from queue_core.timefmt import parse_utc

__all__ = ["PrerunService"]

Doc = dict[str, Any]
SCRATCH_INDEX = "prerun:scratch"
SCAN = 10_000


def _key(dataset: Doc) -> str:
    return f"dataos://{dataset['depot']}:{dataset['collection']}/{dataset['dataset']}"


def _schema_change(columns: list[list[str]], before: list[list[str]] | None, same: bool) -> Doc:
    """How the pre-run's columns differ from the last real write's (``before``: None when not at hand)."""
    if same:
        return {"schema": "same"}
    if before is None:
        return {"schema": "changed"}
    old: dict[str, str] = {name: kind for name, kind in before}
    new: dict[str, str] = {name: kind for name, kind in columns}
    return {
        "schema": "changed",
        "added": [c for c in new if c not in old],
        "removed": [c for c in old if c not in new],
        "retyped": [f"{c}: {old[c]} -> {new[c]}" for c in new if c in old and old[c] != new[c]],
    }


class PrerunService:
    """Pre-runs of workflows, on one store."""

    def __init__(
        self, store: EventStore, read_models: ReadModels, workflows: WorkflowService, secrets: SecretStore
    ) -> None:
        self.store = store
        self.read_models = read_models
        self.workflows = workflows
        self.secrets = secrets

    def start(self, name: str, cluster: str | None = None) -> str:
        """Start a pre-run of workflow ``name``'s latest version; returns its workflow run id."""
        plan = self.workflows.plan(name, cluster)
        run_id = str(uuid.uuid4())
        writes = sorted({_key(out["dataset"]) for t in plan.tasks.values() for out in self._outputs(t["job"])})
        marker = {"id": run_id, "writes": writes}
        tasks = {
            task: t
            if t["job"] is None  # a condition task runs no job
            else {**t, "job": {**t["job"], "envVars": {**t["job"]["envVars"], PRERUN_ENV: "1"}, "prerun": marker}}
            for task, t in plan.tasks.items()
        }
        started = WorkflowRunStarted(
            workflow_id=plan.workflow_id,
            workflow=plan.workflow,
            workflow_version=plan.workflow_version,
            logical_date=plan.logical_date,
            tasks=tasks,
            references=(),  # a pre-run verifies the workflow now: it waits for no reference
            concurrency=plan.concurrency,
            fail_fast=plan.fail_fast,
            prerun=True,
        )
        self.store.append([NewEvent(run_id, started)], {run_id: 0})
        return run_id

    def _outputs(self, job: Doc | None) -> list[Doc]:
        """What a task's job writes through the SQL runner: an inline pipeline's, a built-in's or a sync's outputs."""
        if job is None:
            return []
        if job["type"] in (BUILTIN, DATA_SYNC):
            try:
                types = {name: get_depot(self.store, name)["type"] for name in sorted(job_depots(job))}
            except NotFound:
                return []  # a depot gone since: the task fails when it runs, saying so
            return list(job_pipeline(job, types)["outputs"])
        return list((job.get("pipeline") or {}).get("outputs", []))

    def _prerun(self, run_id: str) -> tuple[Doc, int]:
        doc, version = self.workflows.load_run(run_id)
        if not doc["prerun"]:
            raise InvalidInput(f"workflow run {run_id} is not a pre-run", "run")
        return doc, version

    def _children(self, doc: Doc) -> dict[str, Doc]:
        runs = [t["run"] for t in doc["tasks"].values() if t["run"]]
        return {run: child for run, (child, _) in load_states(self.store, runs, apply_run).items()}

    def _last_real(self, key: str) -> Doc | None:
        """The last write of dataset ``key`` by a real run: its run, rows, fingerprint and (if at hand) columns."""
        self.read_models.catch_up()
        doc = self.read_models.get("datasets", key)
        if not doc or not doc["writes"]:
            return None
        write = doc["writes"][-1]
        columns = None
        run, _ = load_state(self.store, write["run"], apply_run)
        for out in ((run or {}).get("result") or {}).get("outputs", []):
            if dataset_key(out["dataset"]) == key:
                columns = out.get("columns")
        return {"run": write["run"], "rows": write["rows"], "fingerprint": write["fingerprint"], "columns": columns}

    def report(self, run_id: str) -> Doc:
        """Each task's outcome and, per output, rows and schema beside the last real run's."""
        doc, _ = self._prerun(run_id)
        view = self.workflows.view(run_id)
        children = self._children(doc)
        tasks: dict[str, Doc] = {}
        for name, task in view["tasks"].items():
            child = children.get(task["run"]) if task["run"] else None
            outputs = []
            for out in ((child or {}).get("result") or {}).get("outputs", []):
                key, columns = dataset_key(out["dataset"]), out.get("columns", [])
                real = self._last_real(key)
                entry: Doc = {"dataset": key, "scratch": out.get("scratch"), "rows": out["rows"], "columns": columns}
                if real is None:
                    entry.update({"last_real": None, "schema": "new"})
                else:
                    entry["last_real"] = {"run": real["run"], "rows": real["rows"], "columns": real["columns"]}
                    entry.update(_schema_change(columns, real["columns"], fingerprint(columns) == real["fingerprint"]))
                outputs.append(entry)
            message = (child or {}).get("message") or ""
            tasks[name] = {"status": task["status"], "reason": task["reason"], "run": task["run"],
                           "message": message, "outputs": outputs}  # fmt: skip
        return {"id": run_id, "workflow": doc["workflow"], "workflow_version": doc["workflow_version"],
                "status": view["status"], "prerun": True, "scratch": doc["scratch"], "tasks": tasks}  # fmt: skip

    # -- scratch --------------------------------------------------------------------------------

    def _with_scratch(self, workflow: str | None) -> list[Doc]:
        self.read_models.catch_up()
        ids = self.read_models.newest("workflow_runs", SCRATCH_INDEX, 0, SCAN)
        docs = [d for d in self.read_models.get_many("workflow_runs", ids) if d]
        return [d for d in docs if workflow is None or d["workflow"] == workflow]

    def _password(self, secret: str) -> str | None:
        return self.secrets.resolve([secret])[secret]

    def remove(self, run_id: str) -> Doc:
        """Remove one ended pre-run's scratch outputs from every depot it wrote to, and record it."""
        doc, version = self._prerun(run_id)
        if is_going(doc):
            raise InvalidInput(f"pre-run {run_id} is still running; its scratch is removed once it ended", "run")
        depots = sorted(
            {
                out["dataset"].split("://", 1)[1].split(":", 1)[0]
                for child in self._children(doc).values()
                for out in (child.get("result") or {}).get("outputs", [])
            }
        )
        removed, failed = [], []
        for name in depots:
            try:
                remove_scratch(get_depot(self.store, name), run_id, self._password)
                removed.append(name)
            except NotFound:
                removed.append(name)  # the depot is gone: nothing of it is left to remove
            except Exception as exc:  # boto3, duckdb, psycopg, a secret not at hand: no common root
                failed.append(f"{name}: {' '.join(str(exc).split())[:300]}")
        try:
            event = PrerunScratchRemoved(tuple(removed), tuple(failed))
            self.store.append([NewEvent(run_id, event)], {run_id: version})
        except ConcurrencyError:
            pass  # removed by another caller meanwhile: its record stands
        return {"id": run_id, "workflow": doc["workflow"], "removed": removed, "failed": failed}

    def clean(self, workflow: str) -> list[Doc]:
        """Remove the scratch outputs of every ended pre-run of ``workflow``."""
        self.workflows.get(workflow)  # NotFound for an unknown workflow
        return [self.remove(d["id"]) for d in self._with_scratch(workflow) if not is_going(d)]

    def expire(self, now: datetime, retention_seconds: float) -> list[Doc]:
        """Remove the scratch outputs of pre-runs that ended more than ``retention_seconds`` before ``now``."""
        ended = [d for d in self._with_scratch(None) if not is_going(d) and d["finished_at"]]
        due = [d["id"] for d in ended if (now - parse_utc(d["finished_at"])).total_seconds() >= retention_seconds]
        return [self.remove(run) for run in due]
