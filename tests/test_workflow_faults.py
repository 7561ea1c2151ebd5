"""Workflow runs under faults: a dispatcher killed mid-reaction, several dispatchers deciding at once."""

from __future__ import annotations

import threading
from pathlib import Path

import redis

from queue_core import Client
from queue_core.keys import Keys
from queue_core.services.workflow_runs import WorkflowEngine
from tests.support.jobs import native, shell_task
from tests.support.processes import Procs, eventually


def _one_submission_per_task(client: Client, run_id: str) -> None:
    submitted = [rec.event.task for rec in client.events(aggregate=run_id) if rec.type == "TaskSubmitted"]
    assert sorted(submitted) == sorted(set(submitted)), submitted
    children = [rec for rec in client.events(type="RunSubmitted") if rec.event.workflow_run == run_id]
    assert len(children) == len(submitted)


def test_a_dispatcher_killed_between_a_task_success_and_the_next_submission_leaves_nothing_stuck(
    client: Client, workspace: Path, procs: Procs, redis_url: str, tmp_path: Path
):
    """The dispatcher that read the first task's success dies before reacting and before its XACK:
    the entry stays pending under its name, and the next dispatcher finishes the workflow anyway."""
    gate = tmp_path / "gate"
    tasks = {
        "first": shell_task(workspace, "first", f"while [ ! -e {gate} ]; do sleep 0.05; done\n"),
        "second": shell_task(workspace, "second", depends_on=["first"]),
    }
    client.apply_workflow(native("survives", tasks))
    procs.worker(redis_url)
    doomed = procs.dispatcher()
    run_id = client.run_workflow("survives")
    first_run = eventually(
        lambda: (
            client.get_workflow_run(run_id)["tasks"]["first"]["status"] == "RUNNING"
            and client.get_workflow_run(run_id)["tasks"]["first"]["run"]
        ),
        what="the first task to run",
    )
    doomed.kill()  # before the task ends: it cannot have reacted to the success
    doomed.wait()
    keys = Keys()
    connection = redis.Redis.from_url(redis_url)
    gate.touch()
    client.wait(first_run, timeout=30)
    # What the dead dispatcher would have done next: read the success under its name, and then die.
    read = connection.xreadgroup(keys.dispatch_group, "dead-dispatcher", {keys.log: ">"}, count=1000)
    positions = [pos for _stream, entries in read for pos, _ in entries]
    assert positions, "the success was read"
    assert client.get_workflow_run(run_id)["tasks"]["second"]["run"] is None
    procs.dispatcher()
    view = client.wait_workflow_run(run_id, timeout=60)
    assert view["status"] == "SUCCEEDED"
    _one_submission_per_task(client, run_id)
    assert client.replay_verify().identical


def test_two_dispatchers_submit_no_task_twice(client: Client, workspace: Path, procs: Procs, redis_url: str):
    tasks = {"root": shell_task(workspace, "root")}
    tasks |= {f"mid{i:02d}": shell_task(workspace, f"mid{i:02d}", depends_on=["root"]) for i in range(15)}
    tasks["end"] = shell_task(workspace, "end", depends_on=[f"mid{i:02d}" for i in range(15)])
    client.apply_workflow(native("contended", tasks))
    procs.fleet(redis_url, workers=2, dispatchers=2)
    runs = [client.run_workflow("contended") for _ in range(3)]
    for run_id in runs:
        assert client.wait_workflow_run(run_id, timeout=120)["status"] == "SUCCEEDED"
        _one_submission_per_task(client, run_id)
    assert client.replay_verify().identical


def test_eight_threads_advancing_one_workflow_run_at_once_decide_each_step_once(client: Client, workspace: Path):
    """No workers: the threads race to submit the ready tasks, and the version check lets one win each."""
    tasks = {f"t{i}": shell_task(workspace, f"t{i}") for i in range(10)}
    client.apply_workflow(native("raced", tasks, concurrency=4))
    run_id = client.run_workflow("raced")
    barrier = threading.Barrier(8)

    def advance() -> None:
        engine = WorkflowEngine(Client(settings=client.settings).store)
        barrier.wait()
        engine.advance(run_id)

    threads = [threading.Thread(target=advance) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([rec for rec in client.events(aggregate=run_id) if rec.type == "TaskSubmitted"]) == 4
    _one_submission_per_task(client, run_id)
