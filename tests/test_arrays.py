"""Array jobs end to end: real workers run each child with its index; the parent ends as its children do."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
from rq import Queue

from queue_core import Client, IdempotencyKeyReused, InvalidInput
from queue_core.domain.arrays import child_id
from tests.support.jobs import definition, job_file, native, shell_task
from tests.support.processes import Procs, eventually

pytestmark = pytest.mark.fleet(workers=2)


def test_each_child_runs_once_with_its_index_and_a_failing_child_fails_the_parent(
    client: Client, workspace: Path, tmp_path: Path, fleet: Procs
):
    out = tmp_path / "out"
    out.mkdir()
    job_file(workspace, "indexed.sh", 'echo "$JOBLEDGER_ARRAY_INDEX" >> "$1/$JOBLEDGER_ARRAY_INDEX"\n')
    job_file(workspace, "two-fails.sh", '[ "$JOBLEDGER_ARRAY_INDEX" = 2 ] && exit 3\nexit 0\n')
    client.define(definition("indexed", "indexed.sh", args=str(out)))
    client.define(definition("two-fails", "two-fails.sh", retries=1))
    array, failing = client.submit("indexed", array=20), client.submit("two-fails", array=4)

    run = client.wait(array, timeout=60)
    assert (run["status"], run["array"]) == ("SUCCEEDED", {"size": 20, "counts": {**_zero(), "SUCCEEDED": 20}})
    assert sorted(int(p.name) for p in out.iterdir()) == list(range(20))
    assert all(p.read_text() == f"{p.name}\n" for p in out.iterdir())  # each child ran once, told its index
    child = client.get_run(child_id(array, 7))
    assert (child["array_parent"], child["array_index"], child["status"]) == (array, 7, "SUCCEEDED")

    run = client.wait(failing, timeout=60)
    assert (run["status"], run["reason"]) == ("FAILED", "ArrayChildFailed")
    assert run["array"]["counts"] == {**_zero(), "SUCCEEDED": 3, "FAILED": 1}
    assert len(client.get_run(child_id(failing, 2))["attempts"]) == 2  # failed after its retry

    shown = fleet.cli("status", failing)
    assert shown.returncode == 0 and "children    4: 3 SUCCEEDED, 1 FAILED" in shown.stdout
    checked = fleet.cli("check", "--ended")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_cancelling_the_parent_cancels_running_children_and_pending_ones_never_start(
    client: Client, workspace: Path, fleet: Procs, connection: redis.Redis
):
    job_file(workspace, "long.sh", "sleep 60\n")
    client.define(definition("long", "long.sh", timeout=5.0))
    array = client.submit("long", array=6)
    eventually(lambda: client.get_run(array)["array"]["counts"]["RUNNING"] == 2, timeout=30, what="two running")

    cancelled = client.cancel(array)
    assert cancelled["status"] == "CANCELLED"
    children = [client.get_run(child_id(array, i)) for i in range(6)]
    assert [c["status"] for c in children] == ["CANCELLED"] * 6
    started = [c for c in children if c["attempts"]]
    assert len(started) == 2 and all(c["attempts"][0]["status"] == "CANCELLED" for c in started)
    # The workers take the queued ones off without starting them.
    eventually(lambda: Queue("default", connection=connection).count == 0, timeout=30, what="queue drained")
    assert len([e for e in client.events(type="RunStarted") if e.aggregate.startswith(array)]) == 2

    for size in ("1", "10001"):
        before = len(client.events())
        refused = fleet.cli("submit", "long", "--array", size)
        assert refused.returncode == 2 and refused.stdout == ""
        assert refused.stderr.strip().count("\n") == 0 and "array" in refused.stderr and "10,000" in refused.stderr
        assert len(client.events()) == before  # nothing appended


def _zero() -> dict[str, int]:
    return {"PENDING": 0, "RUNNING": 0, "SUCCEEDED": 0, "FAILED": 0, "CANCELLED": 0}


def test_an_idempotency_key_holds_the_size_and_a_gated_definition_is_refused(client: Client, workspace: Path):
    job_file(workspace, "quick.sh", "true\n")
    client.define(definition("quick", "quick.sh"))
    gated = definition("limited", "quick.sh")
    gated["config"]["maxConcurrentRuns"] = 1
    client.define(gated)
    first = client.submit("quick", array=3, idempotency_key="nightly")
    assert client.submit("quick", array=3, idempotency_key="nightly") == first
    before = len(client.events())
    with pytest.raises(IdempotencyKeyReused):
        client.submit("quick", array=4, idempotency_key="nightly")
    with pytest.raises(InvalidInput, match=r"^array: cannot be used with a concurrency limit or a pool"):
        client.submit("limited", array=3)
    with pytest.raises(InvalidInput, match=r"^array: must be a whole number from 2 to 10,000"):
        client.submit("quick", array=10_001)
    assert len(client.events()) == before


def test_a_workflows_array_task_runs_its_children_before_what_depends_on_the_whole_array(
    client: Client, workspace: Path, tmp_path: Path, fleet: Procs
):
    out = tmp_path / "shards"
    out.mkdir()
    tasks = {
        "shards": shell_task(workspace, "shard", f'touch {out}/"$JOBLEDGER_ARRAY_INDEX"\n', array=3),
        "merge": shell_task(workspace, "merge", f'[ "$(ls {out} | wc -l)" = 3 ]\n', depends_on=["shards"]),
    }
    with pytest.raises(InvalidInput, match=r"^tasks\.shards\.array: must be a whole number from 2 to 10,000"):
        client.apply_workflow(native("sharded", {**tasks, "shards": {**tasks["shards"], "array": 1}}))
    client.apply_workflow(native("sharded", tasks))
    view = client.wait_workflow_run(client.run_workflow("sharded"), timeout=60)
    assert {name: task["status"] for name, task in view["tasks"].items()} == {
        "shards": "SUCCEEDED",
        "merge": "SUCCEEDED",
    }
    parent = client.get_run(view["tasks"]["shards"]["run"])
    assert parent["array"]["counts"]["SUCCEEDED"] == 3 and parent["workflow_run"] == view["id"]
    child = client.get_run(child_id(parent["id"], 0))
    assert (child["workflow_run"], child["array_parent"]) == (None, parent["id"])


def test_a_fail_fast_cancel_of_an_array_task_cancels_its_children_too(
    client: Client, workspace: Path, tmp_path: Path, fleet: Procs
):
    started = tmp_path / "started"
    tasks = {
        "shards": shell_task(workspace, "shard", f"touch {started}\nexec sleep 60\n", array=4),
        "bad": shell_task(workspace, "bad", f"while [ ! -e {started} ]; do sleep 0.05; done\nexit 1\n"),
    }
    client.apply_workflow(native("fails-fast", tasks, failFast=True))
    view = client.wait_workflow_run(client.run_workflow("fails-fast"), timeout=60)
    assert (view["status"], view["tasks"]["shards"]["reason"]) == ("FAILED", "Cancelled by failFast")
    parent = view["tasks"]["shards"]["run"]
    children = [child_id(parent, i) for i in range(4)]
    # The running children are stopped and the pending ones never start, as when a user cancels the parent.
    eventually(
        lambda: {client.get_run(c)["status"] for c in children} == {"CANCELLED"}, timeout=30, what="children cancelled"
    )
    assert all(client.get_run(c)["reason"] == "Parent cancelled" for c in children)
