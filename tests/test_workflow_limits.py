"""The documented size limits of a workflow: the largest allowed is accepted and runs; one past it is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from queue_core import Client
from queue_core.errors import InvalidInput
from queue_core.specs.workflows import MAX_DEPTH, MAX_TASKS
from tests.support.jobs import native, shell_task


def _chain(workspace: Path, depth: int) -> dict[str, dict]:
    task = shell_task(workspace, "step", "true\n")  # one script for every step
    return {f"s{i:04d}": {**task, "depends_on": [f"s{i - 1:04d}"] if i else []} for i in range(depth)}


def test_one_level_past_the_depth_limit_is_refused_and_nothing_appended(client: Client, workspace: Path):
    before = len(client.events())
    with pytest.raises(InvalidInput, match=f"{MAX_DEPTH + 1} levels deep.*at most {MAX_DEPTH}"):
        client.apply_workflow(native("too-deep", _chain(workspace, MAX_DEPTH + 1)))
    assert len(client.events()) == before


def test_the_most_tasks_allowed_are_accepted_one_more_is_refused(client: Client, workspace: Path):
    task = shell_task(workspace, "wide", "true\n")
    wide = {f"w{i:04d}": task for i in range(MAX_TASKS)}
    assert client.apply_workflow(native("widest", wide)).created
    with pytest.raises(InvalidInput, match=f"has {MAX_TASKS + 1} tasks; at most {MAX_TASKS}"):
        client.apply_workflow(native("too-wide", {**wide, "one-more": task}))


@pytest.mark.usefixtures("fleet")
def test_a_chain_of_the_largest_allowed_depth_runs_to_succeeded(client: Client, workspace: Path):
    client.apply_workflow(native("deepest", _chain(workspace, MAX_DEPTH)))
    run = client.run_workflow("deepest")
    view = client.wait_workflow_run(run, timeout=900)
    assert view["status"] == "SUCCEEDED", view["reason"]
    assert {task["status"] for task in view["tasks"].values()} == {"SUCCEEDED"}
    assert len(view["tasks"]) == MAX_DEPTH
