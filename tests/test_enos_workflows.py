"""EnOS-shaped workflows (tasks, relations, references) on the workflow engine, and rerun with True/False."""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from queue_core import Client
from queue_core.errors import InvalidInput
from queue_core.specs.workflows import normalize_workflow
from tests.support.jobs import definition, job_file
from tests.support.paths import EXAMPLES
from tests.support.processes import Procs, eventually

NATIVE = {
    "name": "same-dag",
    "tasks": {
        "a": {"definition": "step"},
        "b": {"definition": "step@1", "depends_on": ["a"], "args": "b"},
        "c": {"definition": "step", "depends_on": ["a"]},
        "d": {"definition": "step", "depends_on": ["b", "c"], "cluster": "default"},
    },
    "references": [{"workflow": "feed"}],
}
DATAOS = {
    "name": "same-dag",
    "version": "v1",
    "type": "workflow",
    "workflow": {
        "dag": [
            {"name": "a", "spec": {"definition": "step"}},
            {"name": "b", "spec": {"definition": "step@1", "args": "b"}, "dependencies": ["a"]},
            {"name": "c", "spec": {"definition": "step"}, "dependencies": ["a"]},
            {"name": "d", "spec": {"definition": "step", "compute": "default"}, "dependencies": ["b", "c"]},
        ],
        "references": [{"workflow": "feed"}],
    },
}
ENOS = {
    "name": "same-dag",
    "references": [{"name": "feed-node", "workflow": "feed"}],
    "tasks": [
        {"name": "a", "type": "SHELL", "definition": "step"},
        {"name": "b", "type": "SHELL", "definition": "step@1", "args": "b"},
        {"name": "c", "type": "SHELL", "definition": "step"},
        {"name": "d", "type": "SHELL", "definition": "step", "cluster": "default"},
    ],
    "relations": [
        {"from": "feed-node", "to": "a"},
        {"from": "a", "to": "b"},
        {"from": "a", "to": "c"},
        {"from": "b", "to": "d"},
        {"from": "c", "to": "d"},
    ],
}


def test_the_three_shapes_of_one_dag_normalize_to_the_same_tasks_and_references():
    native, dataos, enos = (normalize_workflow(raw) for raw in (NATIVE, DATAOS, ENOS))
    assert native["tasks"] == dataos["tasks"] == enos["tasks"]
    assert native["references"] == dataos["references"] == enos["references"] == [{"kind": "workflow", "name": "feed"}]


def _enos(*tasks: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"name": "w", "tasks": list(tasks), **top}


SH = {"type": "SHELL", "resource": "etl"}
BAD = [
    (_enos({"name": "a", "type": "SHELL", "resource": "etl"}, relations=[{"from": "a", "to": "b"}]),
     "relations[0].to: points to unknown task 'b'"),
    (_enos({"name": "a", **SH}, relations=[{"from": "x", "to": "a"}]),
     "relations[0].from: comes from unknown task or reference 'x'"),
    (_enos({"name": "a", **SH}, {"name": "b", **SH}, relations=[{"from": "a", "to": "b"}, {"from": "b", "to": "a"}]),
     "tasks: the tasks form a cycle: a -> b -> a"),
    (_enos({"name": "a", **SH}, references=[{"name": "r", "workflow": "up"}], relations=[{"from": "a", "to": "r"}]),
     "relations[0]: points to reference 'r'; a reference is a root"),
    (_enos({"name": "a", "resource": "etl"}), "tasks[0].type: is required"),
    (_enos({"name": "a", "type": "HIVE", "resource": "etl"}), "tasks[0].type"),
    (_enos({"name": "a", "type": "DATA_SYNC", "resource": "etl"}), "tasks[0].resource: does not apply to DATA_SYNC"),
    (_enos({"name": "a", "type": "SHELL"}), "tasks[0]: needs exactly one of resource, definition, settings, sync"),
    (_enos({"name": "a", "type": "SHELL", "resource": "etl", "definition": "x"}), "needs exactly one of"),
    (_enos({"name": "a", **SH}, {"name": "a", **SH}), "tasks[1].name: duplicate task name 'a'"),
    (_enos({"name": "a", **SH}, references=[{"name": "a", "workflow": "up"}]), "node name 'a' is used twice"),
    (_enos({"name": "a", "type": "SHELL", "resource": "etl@0"}), "tasks[0].resource: must be a resource name"),
    (_enos({"name": "a", "type": "SHELL", "resource": "etl", "entry": "../up.sh"}), "tasks[0].entry"),
    (_enos({"name": "a", "type": "SHELL", "settings": {"sourceLocation": "x.sh", "timeout": -1,
                                                      "source": {"type": "WORKSPACE", "sourceDef": {"path": "j"}}}}),
     "tasks[0].settings.timeout"),
    (_enos({"name": "a", "type": "SHELL", "settings": {"type": "PYTHON"}}), "tasks[0].settings.type"),
    (_enos({"name": "a", **SH}, relations=[{"from": "a"}]), "relations[0].to"),
    (_enos({"name": "a", **SH}, relation=[]), "relation"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "message"), BAD, ids=[m.split(":")[0] + str(i) for i, (_, m) in enumerate(BAD)])
def test_a_bad_enos_file_is_refused_in_one_line_naming_the_field(raw: dict[str, Any], message: str):
    with pytest.raises(InvalidInput) as caught:
        normalize_workflow(raw)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_enos_example_normalizes(tmp_path: Path):
    spec = normalize_workflow(yaml.safe_load((EXAMPLES / "workflows" / "enos-etl.yaml").read_text()))
    assert {n: t["depends_on"] for n, t in spec["tasks"].items()} == {
        "extract": [], "transform": ["extract"], "report": ["transform"]
    }  # fmt: skip
    assert spec["references"] == [{"kind": "definition", "name": "hello-world"}]


@pytest.mark.usefixtures("fleet")
@pytest.mark.fleet(workers=2)
def test_an_enos_workflow_waits_for_its_reference_orders_by_relations_and_reruns_true_and_false(
    client: Client, workspace: Path, procs: Procs, tmp_path: Path
):
    script = tmp_path / "step.sh"
    script.write_text('echo "step $1"\n[ "$1" != bad ] || [ -e "$FIXED" ]\n')
    client.add_resource("step", script)  # a script resource: runs as its file name, no entry needed
    client.define(definition("feed", job_file(workspace, "feed.sh", "true\n")))
    fixed = tmp_path / "fixed"
    raw = {
        "name": "enos-run",
        "references": [{"name": "daily", "definition": "feed"}],
        "tasks": [
            {"name": n, "type": "SHELL", "resource": "step", "args": n, "envVars": {"FIXED": str(fixed)}}
            for n in ("first", "bad", "after-bad", "side")
        ],
        "relations": [
            {"from": "daily", "to": "first"},
            {"from": "first", "to": "bad"},
            {"from": "bad", "to": "after-bad"},
            {"from": "first", "to": "side"},
        ],
    }
    client.apply_workflow(raw)
    run_id = client.run_workflow("enos-run", logical_date="2026-11-21")
    eventually(
        lambda: client.get_workflow_run(run_id)["reason"] == "Waiting for reference feed",
        what="the run to wait for its reference",
    )
    assert [r.type for r in client.events(aggregate=run_id)].count("TaskSubmitted") == 0
    client.wait(client.submit("feed", logical_date="2026-11-21"), timeout=30)
    view = client.wait_workflow_run(run_id, timeout=60)
    statuses = {name: task["status"] for name, task in view["tasks"].items()}
    assert statuses == {"first": "SUCCEEDED", "bad": "FAILED", "after-bad": "UPSTREAM_FAILED", "side": "SUCCEEDED"}
    # The log's order: first ends before bad and side are submitted; after-bad is never submitted.
    steps = [
        (r.type, r.event.task) for r in client.events(aggregate=run_id) if r.type in ("TaskSubmitted", "TaskFinished")
    ]
    assert steps[:2] == [("TaskSubmitted", "first"), ("TaskFinished", "first")]
    assert sorted(task for kind, task in steps[2:] if kind == "TaskSubmitted") == ["bad", "side"]

    fixed.touch()
    # bad alone: after-bad stays UPSTREAM_FAILED, so the run ends FAILED again (exit 1, "another end")
    assert procs.cli("workflow", "rerun", run_id, "bad", "--downstream", "false", "--wait").returncode == 1
    view = client.get_workflow_run(run_id)
    assert (view["tasks"]["bad"]["status"], view["tasks"]["after-bad"]["status"]) == ("SUCCEEDED", "UPSTREAM_FAILED")
    assert procs.cli("workflow", "rerun", run_id, "bad", "--downstream", "true", "--wait").returncode == 0
    view = client.get_workflow_run(run_id)
    assert view["status"] == "SUCCEEDED"
    assert {n: len(t["runs"]) for n, t in view["tasks"].items()} == {"first": 1, "bad": 3, "after-bad": 1, "side": 1}
    refused = procs.cli("workflow", "rerun", run_id, "bad", "--downstream", "maybe")
    assert refused.returncode == 2 and "'maybe' is neither true nor false" in refused.stderr


def test_an_archive_resource_without_an_entry_is_refused_when_the_run_starts(client: Client, tmp_path: Path):
    (tmp_path / "run.sh").write_text("true\n")
    archive = tmp_path / "bundle.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "run.sh", arcname="run.sh")
    client.add_resource("bundle", archive)
    client.define(
        {
            "name": "bundled",
            "config": {"type": "SHELL", "source": {"type": "RESOURCE", "sourceDef": {"name": "bundle"}}},
            "cluster": {"name": "default"},
        }
    )
    before = len(client.events())
    with pytest.raises(InvalidInput, match="sourceLocation: is required: resource 'bundle' version 1 is an archive"):
        client.submit("bundled")
    assert len(client.events()) == before


def test_a_dataos_task_takes_pool_pool_slots_and_priority_in_its_spec_like_a_native_task():
    native = {
        "name": "controlled",
        "tasks": {"a": {"definition": "step", "pool": "warehouse", "poolSlots": 2, "priority": 7}},
        "maxConcurrentRuns": 2,
    }
    dag = [{"name": "a", "spec": {"definition": "step", "pool": "warehouse", "poolSlots": 2, "priority": 7}}]
    dataos = {
        "name": "controlled",
        "version": "v1",
        "type": "workflow",
        "workflow": {"dag": dag, "maxConcurrentRuns": 2},
    }
    from_native, from_dataos = normalize_workflow(native), normalize_workflow(dataos)
    assert from_dataos["tasks"] == from_native["tasks"]
    assert from_dataos["tasks"]["a"]["pool"] == "warehouse" and from_dataos["tasks"]["a"]["priority"] == 7
    assert from_dataos["maxConcurrentRuns"] == from_native["maxConcurrentRuns"] == 2
    for key, value, message in (
        ("priority", 10, "priority"),
        ("poolSlots", 0, "poolSlots"),
        ("pool", "no such/name", "pool"),
    ):
        spec = {"definition": "step", "pool": "warehouse", key: value}
        bad = {**dataos, "workflow": {"dag": [{"name": "a", "spec": spec}]}}
        with pytest.raises(InvalidInput, match=rf"workflow\.dag\[0\]\.spec\.{message}"):
            normalize_workflow(bad)
