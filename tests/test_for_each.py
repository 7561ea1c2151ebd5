"""For-each tasks and N_TO_N dependencies end to end: real dispatcher, real rq workers, real jobs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from queue_core import Client, InvalidInput
from queue_core.domain.arrays import child_id, parent_of
from tests.support.jobs import native, shell_task
from tests.support.processes import Procs, eventually

pytestmark = [pytest.mark.usefixtures("fleet"), pytest.mark.fleet(workers=2)]

ENDS = ("RunSucceeded", "RunFailed", "RunCancelled")


def _inner(workspace: Path, name: str, body: str, **extra: Any) -> dict[str, Any]:
    return {key: value for key, value in shell_task(workspace, name, body).items()} | extra


def _children_story(client: Client, parent: str) -> list[tuple[str, int]]:
    """(event type, child index) of the parent's children's starts and ends, in log order."""
    story = []
    for rec in client.events():
        child = parent_of(rec.aggregate)
        if child is not None and child[0] == parent and rec.type in ("RunStarted", *ENDS):
            story.append((rec.type, child[1]))
    return story


def _most_at_once(story: list[tuple[str, int]]) -> int:
    running: set[int] = set()
    most = 0
    for kind, index in story:
        if kind == "RunStarted":
            running.add(index)
        else:
            running.discard(index)
        most = max(most, len(running))
    return most


def test_a_for_each_runs_a_child_per_input_within_its_concurrency_and_repair_reruns_only_the_failed_child(
    client: Client, workspace: Path, tmp_path: Path, fleet: Procs
):
    out, fixed = tmp_path / "out", tmp_path / "fixed"
    out.mkdir()
    body = f'echo "$INDEX" >> {out}/"$1"\nsleep 0.3\n[ "$1" != "c d" ] || [ -e {fixed} ]\n'
    inner = _inner(workspace, "each", body, args="${item}", envVars={"INDEX": "${index}"})
    items = ["a", "b", "c d", "e", "f"]
    tasks = {
        "each": {"forEach": {"inputs": items, "concurrency": 2, "task": inner}},
        "after": shell_task(workspace, "after", depends_on=["each"]),
    }
    client.apply_workflow(native("fan", tasks))
    assert client.plan_workflow("fan").to_json_dict()["tasks"]["each"]["for_each"] == {
        "inputs": items, "concurrency": 2
    }  # fmt: skip
    run_id = client.run_workflow("fan")
    view = client.wait_workflow_run(run_id, timeout=90)
    assert (view["status"], view["tasks"]["each"]["status"], view["tasks"]["after"]["status"]) == (
        "FAILED", "FAILED", "UPSTREAM_FAILED"
    )  # fmt: skip
    first = client.get_run(view["tasks"]["each"]["run"])
    assert first["reason"] == "ArrayChildFailed"
    assert first["array"]["size"] == 5 and first["array"]["forEach"] == {"concurrency": 2, "carried": 0}
    assert {k: v for k, v in first["array"]["counts"].items() if v} == {"SUCCEEDED": 4, "FAILED": 1}
    # Each child got its own item (one word, spaces and all) and index; never more than 2 ran at once.
    assert sorted(p.name for p in out.iterdir()) == sorted(items)
    assert [(out / item).read_text() for item in items] == [f"{i}\n" for i in range(5)]
    story = _children_story(client, first["id"])
    assert sorted(i for kind, i in story if kind == "RunStarted") == list(range(5))
    assert _most_at_once(story) == 2

    fixed.touch()
    client.repair_workflow_run(run_id)
    view = client.wait_workflow_run(run_id, timeout=90)
    assert (view["status"], view["tasks"]["each"]["status"], view["tasks"]["after"]["status"]) == (
        "SUCCEEDED", "SUCCEEDED", "SUCCEEDED"
    )  # fmt: skip
    second = client.get_run(view["tasks"]["each"]["run"])
    assert second["id"] != first["id"] and second["array"]["forEach"] == {"concurrency": 2, "carried": 4}
    assert second["array"]["counts"]["SUCCEEDED"] == 5
    # Only the failed child ran again: its item's file has a second line, the others one.
    assert [(out / item).read_text() for item in items] == ["0\n", "1\n", "2\n2\n", "3\n", "4\n"]
    assert _children_story(client, second["id"]) == [("RunStarted", 2), ("RunSucceeded", 2)]
    assert client.get_run(child_id(second["id"], 2))["array_parent"] == second["id"]
    checked = fleet.cli("check", "--ended")  # every run on the log ended once, carried children and all
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_for_each_inputs_come_from_an_upstream_value_and_a_missing_one_fails_the_task(
    client: Client, workspace: Path, tmp_path: Path, fleet: Procs
):
    out = tmp_path / "from-values"
    out.mkdir()
    tasks = {
        "list": shell_task(workspace, "list", "jobledger-values set files '[\"x\", 7, {\"k\": 1}]'\n"),
        "each": {
            "depends_on": ["list"],
            "forEach": {
                "inputs": "${tasks.list.values.files}",
                "concurrency": 3,
                "task": _inner(workspace, "one", f"echo \"$1\" > {out}/\"$ITEM_INDEX\"\n", args="${item}",
                               envVars={"ITEM_INDEX": "${index}"}),
            },
        },
        "missing": {
            "depends_on": ["list"],
            "forEach": {"inputs": "${tasks.list.values.nope}", "task": _inner(workspace, "never", "exit 1\n")},
        },
    }  # fmt: skip
    path = tmp_path / "values-fan.json"
    path.write_text(json.dumps(native("values-fan", tasks)))
    applied = fleet.cli("workflow", "apply", str(path))
    assert applied.returncode == 0, applied.stderr
    started = fleet.cli("workflow", "run", "values-fan")
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip().split()[-1]
    fleet.cli("workflow", "wait", run_id, timeout=120)
    view = client.get_workflow_run(run_id)
    assert view["tasks"]["each"]["status"] == "SUCCEEDED"
    assert {p.name: p.read_text() for p in out.iterdir()} == {"0": "x\n", "1": "7\n", "2": '{"k":1}\n'}
    assert (view["tasks"]["missing"]["status"], view["tasks"]["missing"]["reason"]) == (
        "FAILED",
        "MissingValue: missing value ${tasks.list.values.nope}: task list published no value nope",
    )
    shown = fleet.cli("status", view["tasks"]["each"]["run"])
    lines = [" ".join(line.split()) for line in shown.stdout.splitlines()]
    assert "children 3: 3 SUCCEEDED" in lines and "for-each 3 at a time, 0 carried from before" in lines


def test_bad_for_each_inputs_and_n_to_n_between_different_sizes_are_refused_in_one_line(
    client: Client, workspace: Path, tmp_path: Path, fleet: Procs
):
    inner = _inner(workspace, "bad", "true\n")
    cases = {
        "empty": ({"forEach": {"inputs": [], "task": inner}}, "tasks.t.forEach.inputs: is empty"),
        "too many": (
            {"forEach": {"inputs": list(range(10_001)), "task": inner}},
            "tasks.t.forEach.inputs: has 10,001 inputs; at most 10,000",
        ),
        "none": ({"forEach": {"task": inner}}, "tasks.t.forEach.inputs: needs inputs"),
        "sizes": (
            {"array": 4, "depends_on": [{"task": "a", "type": "N_TO_N"}], **inner},
            "N_TO_N needs arrays of one size: task 'a' has 3 children, task 't' has 4",
        ),
    }
    before = len(client.events())
    for name, (task, said) in cases.items():
        raw = native("refused", {"a": shell_task(workspace, "a", array=3), "t": task})
        path = tmp_path / f"{name.replace(' ', '-')}.json"
        path.write_text(json.dumps(raw))
        refused = fleet.cli("workflow", "apply", str(path))
        assert refused.returncode == 2 and refused.stdout == "", name
        assert refused.stderr.strip().count("\n") == 0 and said in refused.stderr, refused.stderr
        with pytest.raises(InvalidInput):
            client.apply_workflow(raw)
    assert len(client.events()) == before  # nothing appended


def test_n_to_n_child_i_starts_after_upstream_child_i_succeeded_and_not_after_it_failed(
    client: Client, workspace: Path
):
    tasks = {
        "a": shell_task(workspace, "a", 'sleep "0.$(( 3 - JOBLEDGER_ARRAY_INDEX ))"\n'
                        '[ "$JOBLEDGER_ARRAY_INDEX" != 1 ]\n', array=3),
        "b": shell_task(workspace, "b", "true\n", array=3, depends_on=[{"task": "a", "type": "N_TO_N"}]),
    }  # fmt: skip
    client.apply_workflow(native("pairs", tasks))
    view = client.wait_workflow_run(client.run_workflow("pairs"), timeout=90)
    assert (view["tasks"]["a"]["status"], view["tasks"]["b"]["status"]) == ("FAILED", "FAILED")
    a, b = view["tasks"]["a"]["run"], view["tasks"]["b"]["run"]
    order = {(rec.aggregate, rec.type): n for n, rec in enumerate(client.events())}
    for i in (0, 2):
        assert order[(child_id(a, i), "RunSucceeded")] < order[(child_id(b, i), "RunStarted")]
    assert (child_id(b, 1), "RunStarted") not in order
    blocked = client.get_run(child_id(b, 1))
    assert (blocked["status"], blocked["reason"]) == (
        "CANCELLED",
        "Not started: child 1 of upstream task a did not succeed",
    )
    parent = client.get_run(b)
    assert (parent["reason"], {k: v for k, v in parent["array"]["counts"].items() if v}) == (
        "ArrayChildCancelled",
        {"SUCCEEDED": 2, "CANCELLED": 1},
    )


def test_cancelling_a_for_each_midway_cancels_its_running_children_and_the_rest_never_start(
    client: Client, workspace: Path
):
    inner = _inner(workspace, "slow", "sleep 30\n", args="${item}")
    tasks = {"each": {"forEach": {"inputs": list(range(6)), "concurrency": 2, "task": inner}}}
    client.apply_workflow(native("cancelled-fan", tasks))
    run_id = client.run_workflow("cancelled-fan")

    def parent() -> dict[str, Any] | None:
        run = client.get_workflow_run(run_id)["tasks"]["each"]["run"]
        return client.get_run(run) if run else None

    running = eventually(lambda: (p := parent()) and p["array"]["counts"]["RUNNING"] == 2 and p, timeout=30,
                         what="two children running")  # fmt: skip
    client.cancel_workflow_run(run_id)
    view = client.wait_workflow_run(run_id, timeout=60)
    assert (view["status"], view["tasks"]["each"]["status"]) == ("CANCELLED", "CANCELLED")
    ended = client.get_run(running["id"])
    assert {k: v for k, v in ended["array"]["counts"].items() if v} == {"CANCELLED": 6}
    started = {i for kind, i in _children_story(client, running["id"]) if kind == "RunStarted"}
    assert started == {0, 1}
    assert [client.get_run(child_id(running["id"], i))["status"] for i in (0, 1)] == ["CANCELLED"] * 2
    submitted = {rec.aggregate for rec in client.events(type="RunSubmitted")}
    assert not {child_id(running["id"], i) for i in range(2, 6)} & submitted  # never let in
