"""A workflow run under maxConcurrentRuns is started by one decider: the leading dispatcher, never two at once."""

from __future__ import annotations

from pathlib import Path

from queue_core import Client
from queue_core.services.workflow_runs import WorkflowEngine
from tests.support.jobs import native, shell_task


def _submitted(client: Client, run_id: str) -> int:
    return sum(rec.type == "TaskSubmitted" for rec in client.events(aggregate=run_id))


def test_only_a_dispatcher_allowed_to_start_limited_runs_starts_one_and_others_leave_it(
    client: Client, workspace: Path
):
    client.apply_workflow(native("one-at-a-time", {"a": shell_task(workspace, "a")}, maxConcurrentRuns=1))
    client.apply_workflow(native("unlimited", {"a": shell_task(workspace, "a")}))
    limited, free = client.run_workflow("one-at-a-time"), client.run_workflow("unlimited")
    follower = WorkflowEngine(client.store, may_start_limited=lambda: False)
    assert follower.advance(limited) == 0 and _submitted(client, limited) == 0  # left to the leader
    assert follower.advance(free) > 0 and _submitted(client, free) == 1  # no limit: any dispatcher moves it
    leader = WorkflowEngine(client.store, may_start_limited=lambda: True)
    assert leader.advance(limited) > 0 and _submitted(client, limited) == 1
    second = client.run_workflow("one-at-a-time")
    leader.advance(second)
    assert _submitted(client, second) == 0
    assert client.get_workflow_run(second)["reason"] == "Waiting for a slot (maxConcurrentRuns 1)"
