"""References that could never be met are refused at apply: a workflow naming itself, or a circle of them."""

from __future__ import annotations

from typing import Any

import pytest

from queue_core import Client
from queue_core.errors import InvalidInput

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
