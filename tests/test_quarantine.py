"""One event that cannot be folded quarantines its aggregate; every process goes on serving everything else."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from queue_core import Client
from queue_core.eventlog.events import NewEvent, TaskSubmitted, WorkflowRunStarted
from queue_core.readmodels.projections import QUARANTINE, fold
from tests.support.events import recorded
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs, eventually

TASK = {"job": {"type": "SHELL", "source": {"type": "WORKSPACE", "sourceDef": {"path": "."}}, "sourceLocation": "t.sh"}}


def _plant_poisoned_workflow_run(client: Client) -> str:
    """A workflow run waiting for a reference, then a TaskSubmitted for a task its plan does not have."""
    client.apply_workflow({"name": "base", "tasks": {"t": TASK}})
    client.apply_workflow({"name": "waiting", "tasks": {"t": TASK}, "references": [{"workflow": "base"}]})
    run = client.run_workflow("waiting")
    ghost = TaskSubmitted(task="ghost", run=str(uuid.uuid4()))
    client.store.append([NewEvent(run, ghost)], {run: client.store.version(run)})
    return run


def _broken_start() -> WorkflowRunStarted:
    """A workflow run whose plan names a task that depends on a task it does not have."""
    plan = {"t": {"depends_on": ["missing"]}}
    return WorkflowRunStarted(workflow_id="w", workflow="w", workflow_version=1, logical_date="2026-12-06", tasks=plan)


def _plant_poisoned_start(client: Client) -> str:
    """A workflow run whose very first event does not fold: there is no good state of it at all."""
    run = str(uuid.uuid4())
    client.store.append([NewEvent(run, _broken_start())], {run: 0})
    return run


def test_a_fold_that_raises_quarantines_the_entity_and_folds_the_rest():
    bad, fine = str(uuid.uuid4()), str(uuid.uuid4())
    started = WorkflowRunStarted(workflow_id="w", workflow="w", workflow_version=1, logical_date="d", tasks={})
    events = [
        *recorded(bad, [_broken_start(), TaskSubmitted(task="t", run="r")]),
        *recorded(fine, [started]),
    ]
    state: dict[str, Any] = fold({}, events)
    assert set(state[QUARANTINE]) == {f"workflow_runs:{bad}"}
    entry = state[QUARANTINE][f"workflow_runs:{bad}"]
    assert (entry["type"], entry["position"]) == ("WorkflowRunStarted", events[0].position)
    assert entry["error"].startswith("KeyError")
    assert state["workflow_runs"][fine]["workflow"] == "w" and bad not in state["workflow_runs"]
    one_by_one: dict[str, Any] = {}
    for rec in events:  # the same log quarantines the same entities, however it is cut into batches
        fold(one_by_one, [rec])
    assert one_by_one == state


def test_a_quarantined_aggregate_leaves_every_other_run_flowing(client: Client, workspace: Path, fleet: Procs):
    poisoned_workflow_run = _plant_poisoned_workflow_run(client)
    poisoned_start = _plant_poisoned_start(client)
    client.define(definition("ok", job_file(workspace, "ok.sh", "echo fine\n")))
    runs = [client.submit("ok") for _ in range(3)]
    for run in runs:
        assert client.wait(run, timeout=60)["status"] == "SUCCEEDED"
    assert all(proc.poll() is None for proc in fleet.procs), "a process of the fleet died"

    check = fleet.cli("check")
    assert check.returncode == 1
    assert f"quarantined: workflow_runs {poisoned_start}: its WorkflowRunStarted" in check.stdout
    assert f"quarantined: workflow_runs {poisoned_workflow_run}: its TaskSubmitted" in check.stdout

    replay = fleet.cli("replay", "--verify")
    assert replay.returncode == 0, replay.stderr
    assert "identical" in replay.stdout and f"workflow_runs {poisoned_workflow_run}" in replay.stdout

    status = fleet.cli("workflow", "status", poisoned_workflow_run, "--json")
    assert status.returncode == 0, status.stderr
    assert "is quarantined: folding its TaskSubmitted" in json.loads(status.stdout)["quarantined"]
    started = fleet.cli("workflow", "status", poisoned_start)
    assert started.returncode == 1 and "is quarantined" in started.stderr and "Traceback" not in started.stderr


def test_an_operator_can_cancel_a_quarantined_workflow_run(client: Client, fleet: Procs):
    run = _plant_poisoned_workflow_run(client)
    cancelled = fleet.cli("workflow", "cancel", run)
    assert cancelled.returncode == 0, cancelled.stderr

    def cancelled_in_the_read_models() -> bool:
        client.read_models.catch_up()
        return (client.read_models.get("workflow_runs", run) or {}).get("status") == "CANCELLED"

    eventually(cancelled_in_the_read_models, what="the cancel folded into the quarantined workflow run")
    again = fleet.cli("workflow", "cancel", run)
    assert again.returncode == 2 and "already ended: CANCELLED" in again.stderr


def test_the_console_and_the_metrics_name_what_is_quarantined(client: Client, procs: Procs):
    from tests.support.console_http import request
    from tests.support.servers import start_server
    from tests.test_metrics import scrape

    run = _plant_poisoned_workflow_run(client)
    client.read_models.catch_up()  # what the scheduler does; the console's and metrics' users only read
    console_env = {k: v for k, v in procs.env.items() if not k.startswith("JOBLEDGER_CONSOLE_TOKEN")}
    _, console = start_server(procs, "console", name="console", env=console_env)
    page = request(console, "/runs")
    assert page.status == 200 and "1 quarantined" in page.body and run in page.body
    _, metrics = start_server(procs, "metrics", name="metrics")
    assert scrape(metrics)[("jobledger_quarantined", ())] == 1.0
