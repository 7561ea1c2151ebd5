"""Task values, run-if and branches end to end: real dispatcher, real sandboxed rq workers, real jobs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from queue_core import Client
from tests.support.jobs import native, shell_task
from tests.support.processes import Procs

pytestmark = [pytest.mark.usefixtures("fleet"), pytest.mark.fleet(workers=2)]

SECRET = "hunter2-values-secret"


def test_values_flow_through_three_levels_pick_a_branch_and_run_if_runs_what_follows_a_failure(
    client: Client, workspace: Path, tmp_path: Path
):
    client.set_secret("token", SECRET)
    seen = tmp_path / "seen"
    tasks: dict[str, Any] = {
        # Level 1: the console script, one value a secret's (masked on the way to the log).
        "count": shell_task(workspace, "count", 'jobledger-values set n 3\njobledger-values set who "a b"\n'
                            'jobledger-values set token "$TOKEN"\n', envVars={"TOKEN": {"secret": "token"}}),
        # Level 2: reads n as an argument, writes the values file itself.
        "double": shell_task(workspace, "double", 'echo "{\\"m\\": $(( $1 * 2 )), \\"who\\": \\"$2\\"}" '
                             '> "$JOBLEDGER_VALUES_FILE"\n', depends_on=["count"],
                             args="${tasks.count.values.n} ${tasks.count.values.who}"),
        "check": {"condition": "${tasks.double.values.m} > 5 and ${tasks.double.values.who} == 'a b'",
                  "depends_on": ["double"]},
        # Level 3: reads m in a variable, on the branch taken.
        "big": shell_task(workspace, "big", f'echo "$M" > {seen}\n', depends_on=["check:true"],
                          envVars={"M": "${tasks.double.values.m}"}),
        "small": shell_task(workspace, "small", depends_on=[{"task": "check", "outcome": "false"}]),
        "join": shell_task(workspace, "join", depends_on=["big", "small"], runIf="NONE_FAILED"),
        # Succeeds as a process but publishes what is not JSON: its attempt fails with the reason.
        "bad": shell_task(workspace, "bad", 'echo "not json" > "$JOBLEDGER_VALUES_FILE"\n', depends_on=["count"]),
        "cleanup": shell_task(workspace, "cleanup", depends_on=["bad"], runIf="ALL_DONE"),
        "alert": shell_task(workspace, "alert", depends_on=["bad", "big"], runIf="AT_LEAST_ONE_FAILED"),
        "all-failed": shell_task(workspace, "all-failed", depends_on=["bad", "big"], runIf="ALL_FAILED"),
        "one-success": shell_task(workspace, "one-success", depends_on=["bad", "big"], runIf="AT_LEAST_ONE_SUCCESS"),
        "after-bad": shell_task(workspace, "after-bad", depends_on=["bad"]),
        "missing": shell_task(workspace, "missing", depends_on=["count"], args="${tasks.count.values.nope}"),
    }  # fmt: skip
    client.apply_workflow(native("values", tasks))
    run_id = client.run_workflow("values")
    view = client.wait_workflow_run(run_id, timeout=90)
    statuses = {name: task["status"] for name, task in view["tasks"].items()}
    assert statuses == {
        "count": "SUCCEEDED", "double": "SUCCEEDED", "check": "SUCCEEDED", "big": "SUCCEEDED", "small": "SKIPPED",
        "join": "SUCCEEDED", "bad": "FAILED", "cleanup": "SUCCEEDED", "alert": "SUCCEEDED", "all-failed": "SKIPPED",
        "one-success": "SUCCEEDED", "after-bad": "UPSTREAM_FAILED", "missing": "FAILED",
    }  # fmt: skip
    assert view["status"] == "FAILED"
    assert seen.read_text().strip() == "6"
    tasks_view = view["tasks"]
    assert tasks_view["count"]["values"] == {"n": 3, "who": "a b", "token": "***"}
    assert tasks_view["double"]["values"] == {"m": 6, "who": "a b"}
    assert (tasks_view["check"]["outcome"], tasks_view["check"]["reason"]) == ("true", "Condition true")
    assert tasks_view["small"]["reason"] == "Branch not taken: condition check is true"
    assert tasks_view["bad"]["reason"] == "InvalidValues"
    assert tasks_view["all-failed"]["reason"] == "runIf ALL_FAILED: upstream task big SUCCEEDED"
    assert tasks_view["missing"]["reason"] == (
        "MissingValue: missing value ${tasks.count.values.nope}: task count published no value nope"
    )
    # Values are events on the log: the child run shows them, and the secret's value is nowhere in it.
    count_run = client.get_run(tasks_view["count"]["run"])
    assert count_run["values"] == {"n": 3, "who": "a b", "token": "***"}
    published = [r for r in client.events(aggregate=count_run["id"]) if r.type == "RunValuesPublished"]
    assert len(published) == 1
    assert SECRET not in json.dumps([r.to_json_dict() for r in client.events()])
    # As of before the values landed (its start), the run shows none.
    started = next(r for r in client.events(aggregate=count_run["id"]) if r.type == "RunStarted")
    assert client.get_run(count_run["id"], as_of=started.position)["values"] is None


def test_bad_value_references_and_conditions_are_refused_with_one_line_exit_2_and_nothing_appended(
    client: Client, procs: Procs, tmp_path: Path
):
    cases = {
        "unknown-task": ("name: w\ntasks:\n  a: {definition: x, args: '${tasks.zz.values.n}'}\n",
                         "jobledger: tasks: task 'a' reads a value of unknown task 'zz' (n)"),
        "bad-condition": ("name: w\ntasks:\n  a: {definition: x}\n  c: {condition: '1 >', depends_on: [a]}\n",
                          "jobledger: tasks.c.condition: does not parse at position 4: expected a value, a reference "
                          "or '(', found the end"),
        "branch-of-a-job": ("name: w\ntasks:\n  a: {definition: x}\n  b: {definition: x, depends_on: ['a:true']}\n",
                            "jobledger: tasks: task 'b' follows a branch of 'a', which is not a condition task"),
    }  # fmt: skip
    before = len(client.events())
    for name, (text, message) in cases.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        out = procs.cli("workflow", "apply", str(path))
        assert (out.returncode, out.stderr.strip()) == (2, message), name
    assert len(client.events()) == before


def test_a_sql_tasks_preview_rows_are_its_values_and_feed_the_next_sqls_text(client: Client):
    def sql(name: str, query: str, **extra: Any) -> dict[str, Any]:
        return {"job": {"type": "SQL", "timeout": 1, "pipeline": {"steps": [{"sequence": [{"name": name,
                "sql": query}]}]}}, **extra}  # fmt: skip

    tasks = {
        "q": sql("q", "select 41 + 1 as n, 'x' as tag"),
        "q2": sql("q2", "select ${tasks.q.values.n} * 2 as m", depends_on=["q"]),
        "is-84": {"condition": "${tasks.q2.values.m} == 84", "depends_on": ["q2"]},
    }
    client.apply_workflow(native("sql-values", tasks))
    view = client.wait_workflow_run(client.run_workflow("sql-values"), timeout=60)
    assert view["status"] == "SUCCEEDED", view
    assert view["tasks"]["q"]["values"] == {"rows": [{"n": 42, "tag": "x"}], "n": 42, "tag": "x"}
    assert view["tasks"]["is-84"]["outcome"] == "true"
