"""References that could never be met are refused at apply: a workflow naming itself, or a circle of them."""

from __future__ import annotations

from typing import Any

import pytest

from queue_core import Client
from queue_core.errors import InvalidInput
from queue_core.services.workflow_runs import WorkflowEngine
from tests.support.processes import eventually

TASK = {
    "job": {"type": "SHELL", "source": {"type": "WORKSPACE", "sourceDef": {"path": "jobs"}}, "sourceLocation": "t.sh"}
}


def workflow(name: str, *references: str) -> dict[str, Any]:
    return {"name": name, "tasks": {"t": TASK}, "references": [{"workflow": r} for r in references]}


def test_a_workflow_referencing_itself_is_refused_and_nothing_appended(client: Client):
    before = len(client.events())
    with pytest.raises(InvalidInput, match="names workflow 'loop' itself") as caught:
        client.apply_workflow(workflow("loop", "loop"))
    assert "\n" not in str(caught.value)
    assert len(client.events()) == before


def test_a_circle_of_references_is_refused_naming_it(client: Client):
    client.apply_workflow(workflow("a"))
    client.apply_workflow(workflow("b", "a"))
    client.apply_workflow(workflow("c", "b"))
    before = len(client.events())
    with pytest.raises(InvalidInput, match=r"references form a circle: a -> c -> b -> a"):
        client.apply_workflow(workflow("a", "c"))  # a's new version would wait for c, which waits for b, for a
    assert len(client.events()) == before
    assert client.get_workflow("a")["version"] == 1


def test_references_that_only_join_are_not_a_circle(client: Client):
    client.apply_workflow(workflow("base"))
    client.apply_workflow(workflow("left", "base"))
    client.apply_workflow(workflow("right", "base"))
    applied = client.apply_workflow(workflow("top", "left", "right", "base"))
    assert applied.created


def test_a_long_chain_of_references_is_checked_without_recursion(client: Client):
    client.apply_workflow(workflow("w0"))
    for i in range(1, 60):
        client.apply_workflow(workflow(f"w{i}", f"w{i - 1}"))
    with pytest.raises(InvalidInput, match="references form a circle: w0 -> w59 -> w58"):
        client.apply_workflow(workflow("w0", "w59"))


def test_a_reference_timeout_needs_references_and_positive_minutes(client: Client):
    with pytest.raises(InvalidInput, match="referenceTimeout: applies only with references"):
        client.apply_workflow({**workflow("lonely"), "referenceTimeout": 5})
    client.apply_workflow(workflow("base"))
    for bad in (0, -1, "5", 10**9):
        with pytest.raises(InvalidInput, match="referenceTimeout"):
            client.apply_workflow({**workflow("late", "base"), "referenceTimeout": bad})
    client.apply_workflow({**workflow("late", "base"), "referenceTimeout": 90})
    assert client.plan_workflow("late").to_json_dict()["referenceTimeout"] == 90.0


def test_a_reference_not_met_within_its_timeout_fails_the_waiting_tasks_and_the_run(client: Client):
    client.apply_workflow(workflow("base"))  # never run: the reference is never met
    client.apply_workflow({**workflow("late", "base"), "referenceTimeout": 0.005})  # 0.3 s
    run = client.run_workflow("late")
    assert client.get_workflow_run(run)["status"] == "PENDING"
    engine = WorkflowEngine(client.store)

    def ended() -> dict[str, Any] | None:
        engine.advance(run)  # what the dispatcher's upkeep does every few seconds
        doc = client.get_workflow_run(run)
        return doc if doc["status"] == "FAILED" else None

    doc = eventually(ended, timeout=30, what="the reference timeout")
    assert doc["reason"].startswith("ReferenceTimeout: no SUCCEEDED run of workflow base for ")
    assert doc["tasks"]["t"]["status"] == "FAILED"
    assert doc["tasks"]["t"]["run"] is None  # no job ran
