"""Workflows: DAGs of jobs run as event-sourced workflow runs, with real dispatchers and rq workers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from queue_core import Client
from queue_core.errors import AlreadyTerminal, InvalidInput, NotFound
from tests.support.jobs import definition, job_file, native, shell_task
from tests.support.paths import EXAMPLES
from tests.support.processes import Procs, eventually

pytestmark = [pytest.mark.usefixtures("fleet"), pytest.mark.fleet(workers=2)]


def test_a_diamond_runs_each_task_once_after_its_upstream(client: Client, workspace: Path, tmp_path: Path):
    order = tmp_path / "order"
    mark = f'echo "$0" >> {order}\n'
    tasks = {
        "a": shell_task(workspace, "a", mark),
        "b": shell_task(workspace, "b", mark, depends_on=["a"]),
        "c": shell_task(workspace, "c", mark, depends_on=["a"]),
        "d": shell_task(workspace, "d", mark, depends_on=["b", "c"]),
    }
    client.apply_workflow(native("diamond", tasks))
    run_id = client.run_workflow("diamond")
    view = client.wait_workflow_run(run_id, timeout=60)
    assert view["status"] == "SUCCEEDED"
    assert {name: t["status"] for name, t in view["tasks"].items()} == dict.fromkeys("abcd", "SUCCEEDED")
    ran = [Path(line).stem for line in order.read_text().split()]
    assert sorted(ran) == ["a", "b", "c", "d"]
    assert ran[0] == "a" and ran[-1] == "d"
    child = client.get_run(view["tasks"]["b"]["run"])
    assert (child["workflow_run"], child["task"], child["definition"]) == (run_id, "b", "diamond.b")


def test_a_cycle_is_refused_with_its_path_and_nothing_appended(client: Client, workspace: Path):
    tasks = {
        "a": shell_task(workspace, "a", depends_on=["c"]),
        "b": shell_task(workspace, "b", depends_on=["a"]),
        "c": shell_task(workspace, "c", depends_on=["b"]),
    }
    before = len(client.events())
    with pytest.raises(InvalidInput, match=r"cycle: a -> b -> c -> a"):
        client.apply_workflow(native("loop", tasks))
    with pytest.raises(NotFound):
        client.get_workflow("loop")
    assert len(client.events()) == before


def _submissions(client: Client, run_id: str) -> list[str]:
    return [rec.event.task for rec in client.events(aggregate=run_id) if rec.type == "TaskSubmitted"]


def _statuses(view: dict[str, Any]) -> dict[str, str]:
    return {name: task["status"] for name, task in view["tasks"].items()}


def test_a_fan_out_of_20_runs_every_branch_then_the_fan_in(client: Client, workspace: Path):
    tasks = {"root": shell_task(workspace, "root")}
    tasks |= {f"leaf{i:02d}": shell_task(workspace, f"leaf{i:02d}", depends_on=["root"]) for i in range(20)}
    tasks["sink"] = shell_task(workspace, "sink", depends_on=[f"leaf{i:02d}" for i in range(20)])
    client.apply_workflow(native("fan", tasks))
    run_id = client.run_workflow("fan")
    view = client.wait_workflow_run(run_id, timeout=120)
    assert view["status"] == "SUCCEEDED"
    assert set(_statuses(view).values()) == {"SUCCEEDED"}
    submitted = _submissions(client, run_id)
    assert sorted(submitted) == sorted(tasks) and submitted[0] == "root" and submitted[-1] == "sink"


def test_a_chain_of_10_runs_in_order(client: Client, workspace: Path):
    tasks = {f"step{i}": shell_task(workspace, f"step{i}", depends_on=[f"step{i - 1}"] if i else []) for i in range(10)}
    client.apply_workflow(native("chain", tasks))
    run_id = client.run_workflow("chain")
    assert client.wait_workflow_run(run_id, timeout=120)["status"] == "SUCCEEDED"
    assert _submissions(client, run_id) == [f"step{i}" for i in range(10)]


def test_a_failing_middle_task_fails_its_downstream_and_an_independent_branch_still_succeeds(
    client: Client, workspace: Path
):
    tasks = {
        "start": shell_task(workspace, "start"),
        "bad": shell_task(workspace, "bad", "exit 3\n", depends_on=["start"]),
        "after-bad": shell_task(workspace, "after-bad", depends_on=["bad"]),
        "last": shell_task(workspace, "last", depends_on=["after-bad"]),
        "other": shell_task(workspace, "other", depends_on=["start"]),
    }
    client.apply_workflow(native("broken-middle", tasks))
    run_id = client.run_workflow("broken-middle")
    view = client.wait_workflow_run(run_id, timeout=60)
    assert (view["status"], view["reason"]) == ("FAILED", "Task bad FAILED")
    assert _statuses(view) == {"start": "SUCCEEDED", "bad": "FAILED", "after-bad": "UPSTREAM_FAILED",
                               "last": "UPSTREAM_FAILED", "other": "SUCCEEDED"}  # fmt: skip
    assert view["tasks"]["bad"]["reason"] == "NonZeroExitCode"
    assert view["tasks"]["last"]["reason"] == "Upstream task after-bad UPSTREAM_FAILED"
    assert view["tasks"]["after-bad"]["run"] is None  # never ran
    assert sorted(_submissions(client, run_id)) == ["bad", "other", "start"]


def test_fail_fast_cancels_what_is_running_and_starts_nothing_more(client: Client, workspace: Path, tmp_path: Path):
    started = tmp_path / "slow-started"
    tasks = {
        "slow": shell_task(workspace, "slow", f"touch {started}\nsleep 30\n"),
        "bad": shell_task(workspace, "bad", f"while [ ! -e {started} ]; do sleep 0.05; done\nexit 1\n"),
        "after-slow": shell_task(workspace, "after-slow", depends_on=["slow"]),
        "later": shell_task(workspace, "later", depends_on=["bad"]),
    }
    client.apply_workflow(native("fast-fail", tasks, failFast=True))
    run_id = client.run_workflow("fast-fail")
    view = client.wait_workflow_run(run_id, timeout=60)
    assert view["status"] == "FAILED"
    assert _statuses(view) == {"slow": "CANCELLED", "bad": "FAILED", "after-slow": "CANCELLED",
                               "later": "UPSTREAM_FAILED"}  # fmt: skip
    assert view["tasks"]["slow"]["reason"] == "Cancelled by failFast"
    assert view["tasks"]["after-slow"]["reason"] == "Not started: failFast after task bad FAILED"
    assert client.get_run(view["tasks"]["slow"]["run"])["status"] == "CANCELLED"


def test_concurrency_1_serializes_a_fan_out(client: Client, workspace: Path):
    tasks = {f"t{i}": shell_task(workspace, f"t{i}", "sleep 0.1\n") for i in range(5)}
    client.apply_workflow(native("one-at-a-time", tasks, concurrency=1))
    run_id = client.run_workflow("one-at-a-time")
    view = client.wait_workflow_run(run_id, timeout=60)
    assert view["status"] == "SUCCEEDED"
    # Ordered by log position: every run started after the previous one ended.
    runs = {t["run"] for t in view["tasks"].values()}
    running: set[str] = set()
    most = 0
    for rec in client.events():
        if rec.aggregate in runs and rec.type == "RunSubmitted":
            running.add(rec.aggregate)
        elif rec.aggregate in runs and rec.type in ("RunSucceeded", "RunFailed", "RunCancelled"):
            running.discard(rec.aggregate)
        most = max(most, len(running))
    assert most == 1


def test_cancel_mid_run_cancels_running_tasks_and_starts_no_pending_one(
    client: Client, workspace: Path, tmp_path: Path
):
    started = tmp_path / "started"
    tasks = {
        "first": shell_task(workspace, "first", f"touch {started}\nsleep 30\n"),
        "second": shell_task(workspace, "second", depends_on=["first"]),
    }
    client.apply_workflow(native("to-cancel", tasks))
    run_id = client.run_workflow("to-cancel")
    eventually(started.exists, what="the first task to start")
    client.cancel_workflow_run(run_id)
    view = client.wait_workflow_run(run_id, timeout=30)
    assert (view["status"], view["reason"]) == ("CANCELLED", "Cancelled by user")
    assert _statuses(view) == {"first": "CANCELLED", "second": "CANCELLED"}
    assert view["tasks"]["second"]["run"] is None
    assert _submissions(client, run_id) == ["first"]
    with pytest.raises(AlreadyTerminal, match="already ended: CANCELLED"):
        client.cancel_workflow_run(run_id)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unknown-dependency", "tasks: task 'b' depends on unknown task 'nope'"),
        ("unknown-definition", "tasks.a.definition: no definition named 'missing'"),
        ("unknown-workflow-reference", "references: no workflow named 'ghost'"),
        ("duplicate-dataos-task", "workflow.dag[1].name: duplicate task name 'a'"),
        ("no-job", "tasks.a: needs exactly one of definition or job"),
        ("bad-inline-job", "tasks.a.job.type: unknown job type 'RUST'"),
    ],
)
def test_bad_workflows_are_refused_with_one_line_and_nothing_appended(
    client: Client, workspace: Path, case: str, message: str
):
    task = shell_task(workspace, "a")
    raw: dict[str, Any] = {
        "unknown-dependency": native("w", {"a": task, "b": {**task, "depends_on": ["nope"]}}),
        "unknown-definition": native("w", {"a": {"definition": "missing"}}),
        "unknown-workflow-reference": native("w", {"a": task}, references=[{"workflow": "ghost"}]),
        "duplicate-dataos-task": {"name": "w", "type": "workflow", "workflow": {"dag": [
            {"name": "a", "spec": {"definition": "x"}}, {"name": "a", "spec": {"definition": "x"}}]}},
        "no-job": native("w", {"a": {"depends_on": []}}),
        "bad-inline-job": native("w", {"a": {"job": {**task["job"], "type": "RUST"}}}),
    }[case]  # fmt: skip
    before = len(client.events())
    with pytest.raises((InvalidInput, NotFound)) as caught:
        client.apply_workflow(raw)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
    assert len(client.events()) == before


def test_the_cli_refuses_a_cycle_and_a_task_named_twice_with_exit_2(client: Client, procs: Procs, tmp_path: Path):
    cyclic = tmp_path / "cyclic.yaml"
    cyclic.write_text("name: w\ntasks:\n  a: {definition: x, depends_on: [b]}\n  b: {definition: x, depends_on: [a]}\n")
    twice = tmp_path / "twice.yaml"
    twice.write_text("name: w\ntasks:\n  a: {definition: x}\n  a: {definition: y}\n")
    before = len(client.events())
    out = procs.cli("workflow", "apply", str(cyclic))
    assert (out.returncode, out.stderr.strip()) == (2, "jobledger: tasks: the tasks form a cycle: a -> b -> a")
    out = procs.cli("workflow", "apply", str(twice))
    assert out.returncode == 2
    assert out.stderr.strip() == f"jobledger: {twice}: the key 'a' is given twice (line 4)"
    assert len(client.events()) == before


def test_rerun_of_one_task_runs_only_it_and_keeps_the_history(client: Client, workspace: Path, tmp_path: Path):
    flag = tmp_path / "fixed"
    tasks = {
        "a": shell_task(workspace, "a"),
        "b": shell_task(workspace, "b", f"[ -e {flag} ]\n", depends_on=["a"]),
        "c": shell_task(workspace, "c", depends_on=["b"]),
    }
    client.apply_workflow(native("rerun-one", tasks))
    run_id = client.run_workflow("rerun-one")
    first = client.wait_workflow_run(run_id, timeout=60)
    assert _statuses(first) == {"a": "SUCCEEDED", "b": "FAILED", "c": "UPSTREAM_FAILED"}
    flag.touch()
    client.rerun_workflow_task(run_id, "b")
    view = client.wait_workflow_run(run_id, timeout=60)
    # b alone: c stays UPSTREAM_FAILED, so the run is still FAILED, recomputed from the latest attempts.
    assert _statuses(view) == {"a": "SUCCEEDED", "b": "SUCCEEDED", "c": "UPSTREAM_FAILED"}
    assert (view["status"], view["reason"]) == ("FAILED", "Task c UPSTREAM_FAILED")
    assert len(view["tasks"]["b"]["runs"]) == 2 and view["tasks"]["b"]["runs"][0] == first["tasks"]["b"]["run"]
    types = [rec.type for rec in client.events(aggregate=run_id)]
    assert types.count("WorkflowRunFinished") == 2 and types.count("TaskRerunRequested") == 1
    assert _submissions(client, run_id) == ["a", "b", "b"]
    assert client.get_run(first["tasks"]["b"]["run"])["status"] == "FAILED"  # history is not rewritten


def test_rerun_with_downstream_runs_the_task_and_everything_after_it(client: Client, workspace: Path):
    tasks = {
        "a": shell_task(workspace, "a"),
        "b": shell_task(workspace, "b", depends_on=["a"]),
        "c": shell_task(workspace, "c", depends_on=["b"]),
        "d": shell_task(workspace, "d", depends_on=["a"]),
    }
    client.apply_workflow(native("rerun-down", tasks))
    run_id = client.run_workflow("rerun-down")
    assert client.wait_workflow_run(run_id, timeout=60)["status"] == "SUCCEEDED"
    view = client.rerun_workflow_task(run_id, "b", downstream=True)
    assert view["reruns"][-1] == {**view["reruns"][-1], "tasks": ["b", "c"], "mode": "downstream"}
    view = client.wait_workflow_run(run_id, timeout=60)
    assert view["status"] == "SUCCEEDED"
    submitted = _submissions(client, run_id)
    assert submitted[4:] == ["b", "c"] and sorted(submitted[:4]) == ["a", "b", "c", "d"]
    assert [len(view["tasks"][t]["runs"]) for t in "abcd"] == [1, 2, 2, 1]


def test_repair_reruns_failed_cancelled_and_upstream_failed_tasks_leaving_succeeded_ones(
    client: Client, workspace: Path, tmp_path: Path
):
    flag = tmp_path / "fixed"
    tasks = {
        "ok": shell_task(workspace, "ok"),
        "bad": shell_task(workspace, "bad", f"[ -e {flag} ]\n", depends_on=["ok"]),
        "after": shell_task(workspace, "after", depends_on=["bad"]),
        "side": shell_task(workspace, "side", depends_on=["ok"]),
    }
    client.apply_workflow(native("repairable", tasks))
    run_id = client.run_workflow("repairable")
    assert client.wait_workflow_run(run_id, timeout=60)["status"] == "FAILED"
    with pytest.raises(InvalidInput, match="upstream task 'bad' is FAILED"):
        client.rerun_workflow_task(run_id, "after")
    flag.touch()
    view = client.repair_workflow_run(run_id)
    assert view["reruns"][-1]["tasks"] == ["bad", "after"] and view["reruns"][-1]["mode"] == "repair"
    view = client.wait_workflow_run(run_id, timeout=60)
    assert view["status"] == "SUCCEEDED"
    assert [len(view["tasks"][t]["runs"]) for t in ("ok", "bad", "after", "side")] == [1, 2, 1, 1]
    with pytest.raises(InvalidInput, match="nothing to repair"):
        client.repair_workflow_run(run_id)


def test_a_reference_satisfied_after_the_start_releases_the_workflow_run(client: Client, workspace: Path):
    client.define(definition("upstream-feed", job_file(workspace, "feed.sh", "true\n")))
    tasks = {"use": shell_task(workspace, "use")}
    client.apply_workflow(native("needs-feed", tasks, references=[{"definition": "upstream-feed"}]))
    run_id = client.run_workflow("needs-feed", logical_date="2026-11-20")
    client.wait(client.submit("upstream-feed", logical_date="2026-11-19"), timeout=30)  # another day: no match
    view = eventually(
        lambda: (v := client.get_workflow_run(run_id))["reason"] == "Waiting for reference upstream-feed" and v,
        what="the workflow run to wait for its reference",
    )
    assert view["status"] == "PENDING" and _submissions(client, run_id) == []
    feed = client.submit("upstream-feed", logical_date="2026-11-20")
    view = client.wait_workflow_run(run_id, timeout=60)
    assert view["status"] == "SUCCEEDED"
    assert view["references"] == [{"kind": "definition", "name": "upstream-feed", "run": feed}]


def _diamond(workspace: Path) -> dict[str, Any]:
    return {
        "a": shell_task(workspace, "a"),
        "b": shell_task(workspace, "b", depends_on=["a"]),
        "c": shell_task(workspace, "c", depends_on=["a"]),
        "d": shell_task(workspace, "d", depends_on=["b", "c"]),
    }


def test_workflow_run_json_status_tree_and_graphs(client: Client, workspace: Path, procs: Procs, tmp_path: Path):
    path = tmp_path / "diamond.json"
    path.write_text(json.dumps(native("shown", _diamond(workspace))))
    assert procs.cli("workflow", "apply", str(path)).returncode == 0
    out = procs.cli("workflow", "run", "shown", "--wait", "--json", "--logical-date", "2026-11-21")
    assert out.returncode == 0, out.stderr
    view = json.loads(out.stdout)
    assert list(view)[:6] == ["id", "workflow", "workflow_version", "logical_date", "status", "reason"]
    assert (view["workflow"], view["status"], view["logical_date"]) == ("shown", "SUCCEEDED", "2026-11-21")
    assert set(view["tasks"]) == set("abcd")
    for name, task in view["tasks"].items():
        assert {"status", "reason", "run", "attempts"} <= set(task)
        assert (task["status"], task["attempts"]) == ("SUCCEEDED", 1)
        assert client.get_run(task["run"])["task"] == name
    status = json.loads(procs.cli("workflow", "status", view["id"], "--json").stdout)
    assert status["tasks"] == view["tasks"]
    tree = procs.cli("workflow", "status", view["id"]).stdout.splitlines()
    assert tree[0] == "shown (version 1)  SUCCEEDED"
    assert tree[2].startswith("└── a  SUCCEEDED  1 attempt")
    assert tree[3].startswith("    ├── b  SUCCEEDED") and tree[4].startswith("    │   └── d  SUCCEEDED")
    assert tree[5].startswith("    └── c  SUCCEEDED") and tree[6] == "        └── d  (drawn above)"
    mermaid = procs.cli("workflow", "graph", view["id"], "--format", "mermaid").stdout
    assert mermaid.startswith("flowchart TD\n") and '["d<br/>SUCCEEDED"]:::succeeded' in mermaid
    assert mermaid.count("-->") == 4
    dot = procs.cli("workflow", "graph", view["id"], "--format", "dot").stdout
    assert dot.startswith('digraph "shown" {') and '"b" -> "d";' in dot and '"c" -> "d";' in dot


def test_dry_run_prints_the_plan_by_level_and_appends_nothing(client: Client, workspace: Path, procs: Procs):
    client.apply_workflow(native("planned", _diamond(workspace), concurrency=2))
    before = len(client.events())
    out = procs.cli("workflow", "run", "planned", "--dry-run", "--logical-date", "2026-11-21")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "planned (version 1)  logical date 2026-11-21  (dry run)"
    assert lines[1].startswith("level 0: a [planned.a v1 on default]")
    assert lines[2].startswith("level 1: b [") and lines[2].endswith("(in parallel)")
    assert lines[3].startswith("level 2: d [")
    plan = json.loads(procs.cli("workflow", "run", "planned", "--dry-run", "--json").stdout)
    assert plan["levels"] == [["a"], ["b", "c"], ["d"]] and plan["concurrency"] == 2
    assert len(client.events()) == before


def test_workflow_status_as_of_shows_the_run_as_it_was(client: Client, workspace: Path):
    client.apply_workflow(native("then", _diamond(workspace)))
    run_id = client.run_workflow("then")
    client.wait_workflow_run(run_id, timeout=60)
    history = client.events(aggregate=run_id)
    b_done = next(r for r in history if r.type == "TaskFinished" and r.event.task == "b")
    then = client.get_workflow_run(run_id, as_of=b_done.position)
    assert then["status"] == "RUNNING"
    assert then["tasks"]["a"]["status"] == then["tasks"]["b"]["status"] == "SUCCEEDED"
    assert then["tasks"]["d"]["run"] is None
    started = client.get_workflow_run(run_id, as_of=history[0].position)
    assert started["status"] == "PENDING" and {t["status"] for t in started["tasks"].values()} == {"PENDING"}


def test_a_task_timeline_starts_with_its_wait_for_upstream_tasks(client: Client, workspace: Path):
    tasks = {"a": shell_task(workspace, "a", "sleep 0.3\n"), "b": shell_task(workspace, "b", depends_on=["a"])}
    client.apply_workflow(native("waits", tasks))
    run_id = client.run_workflow("waits")
    view = client.wait_workflow_run(run_id, timeout=60)
    phases = client.run_timeline(view["tasks"]["b"]["run"])
    assert [p.phase for p in phases][:2] == ["waiting for a reference or upstream task", "recently submitted"]
    assert phases[0].seconds >= 0.3
    assert phases[0].ended_at == client.get_run(view["tasks"]["b"]["run"])["submitted_at"]


def test_the_dataos_example_runs_its_flare_jobs_in_order(client: Client, procs: Procs, redis_url: str, tmp_path):
    client.add_depot("thirdparty01", "local", path=str(EXAMPLES / "pipelines" / "depot"))
    client.add_depot("bqdepot", "duckdb", path=str(tmp_path / "bq.duckdb"))
    applied = client.apply_workflow_file(EXAMPLES / "workflows" / "city-dag.yaml")
    assert (applied.name, applied.version) == ("city-dag", 1)
    procs.worker(redis_url, cluster="runnable-default")
    view = client.wait_workflow_run(client.run_workflow("city-dag"), timeout=120)
    assert view["status"] == "SUCCEEDED", view
    summary = client.get_run(view["tasks"]["city-summary"]["run"])
    assert summary["cluster"] == "runnable-default"
    assert summary["result"]["outputs"][0]["dataset"] == "dataos://bqdepot:dev/population_by_state"
    assert client.replay_verify().identical


def test_the_native_example_applies_and_plans(client: Client, procs: Procs):
    client.define_file(EXAMPLES / "definitions" / "hello-world.json")
    out = procs.cli("workflow", "apply", str(EXAMPLES / "workflows" / "etl-native.yaml"))
    assert out.returncode == 0, out.stderr
    plan = client.plan_workflow("etl-native")
    assert plan.levels == [["greet"], ["extract-customers", "extract-orders"], ["transform"], ["load"]]
    assert plan.tasks["greet"]["definition"] == "hello-world"
    assert plan.tasks["extract-orders"]["job"]["args"] == "extract-orders"
    unchanged = procs.cli("workflow", "apply", str(EXAMPLES / "workflows" / "etl-native.yaml"))
    assert "unchanged: etl-native stays at version 1" in unchanged.stdout


def test_workflow_commands_on_what_does_not_exist_or_cannot_be_done_exit_2_with_one_line(
    client: Client, workspace: Path, procs: Procs, tmp_path: Path
):
    started = tmp_path / "started"
    tasks = {"slow": shell_task(workspace, "slow", f"touch {started}\nsleep 30\n")}
    client.apply_workflow(native("busy", tasks))
    run_id = client.run_workflow("busy")
    eventually(started.exists, what="the task to start")
    before = len(client.events())
    cases = [
        (("workflow", "status", "not-a-run"), "jobledger: no workflow run with id not-a-run"),
        (("workflow", "run", "nope"), "jobledger: no workflow named 'nope'"),
        (("workflow", "rerun", run_id, "slow"), f"jobledger: workflow run {run_id} is still RUNNING"),
        (("workflow", "repair", run_id), f"jobledger: workflow run {run_id} is still RUNNING"),
        (("workflow", "run", "busy", "--logical-date", "x"), "jobledger: --logical-date: 'x' is not a date"),
    ]
    for argv, message in cases:
        out = procs.cli(*argv)
        assert out.returncode == 2, (argv, out.stderr)
        assert out.stderr.startswith(message) and out.stderr.count("\n") == 1, out.stderr
    assert len(client.events()) == before
    client.cancel_workflow_run(run_id)


def test_max_concurrent_runs_holds_later_workflow_runs_pending_and_starts_them_in_submission_order(
    client: Client, workspace: Path
):
    with pytest.raises(InvalidInput, match="maxConcurrentRuns"):
        client.apply_workflow(native("limited", {"a": shell_task(workspace, "lim-a", "true\n")}, maxConcurrentRuns=0))
    tasks = {"a": shell_task(workspace, "lim-a", "sleep 0.3\n"), "b": shell_task(workspace, "lim-b", "true\n")}
    tasks["b"]["depends_on"] = ["a"]
    client.apply_workflow(native("limited", tasks, maxConcurrentRuns=1))
    started = [client.run_workflow("limited") for _ in range(3)]
    eventually(lambda: client.get_workflow_run(started[2])["reason"] == "Waiting for a slot (maxConcurrentRuns 1)")
    for run_id in started:
        assert client.wait_workflow_run(run_id, timeout=30)["status"] == "SUCCEEDED"
    # From the log: a workflow run holds its slot from its first task submitted until it ends.
    going: set[str] = set()
    order: list[str] = []
    waited: set[str] = set()
    most = 0
    for rec in client.events():
        if rec.aggregate not in started:
            continue
        if rec.type == "TaskSubmitted" and rec.aggregate not in order:
            order.append(rec.aggregate)
            going.add(rec.aggregate)
        elif rec.type == "WorkflowRunFinished":
            going.discard(rec.aggregate)
        elif rec.type == "WorkflowRunWaiting":
            waited.add(rec.aggregate)
        most = max(most, len(going))
    assert most == 1
    assert order == started
    assert waited == set(started[1:])
