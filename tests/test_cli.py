"""The command line: JSON shapes, exit codes, one-line errors, logs that follow, waits that time out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from queue_core import Client
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs, eventually


def _define(client: Client, workspace: Path, name: str, body: str, **kwargs) -> None:
    client.define(definition(name, job_file(workspace, f"{name}.sh", body), **kwargs))


def test_submit_json_prints_the_run_as_status_json_does(client: Client, workspace: Path, procs: Procs):
    _define(client, workspace, "ok", "true\n")
    result = procs.cli("submit", "ok", "--json")
    assert result.returncode == 0, result.stderr
    submitted = json.loads(result.stdout)
    status = json.loads(procs.cli("status", submitted["id"], "--json").stdout)
    assert submitted == status
    assert (status["status"], status["reason"]) == ("PENDING", "Recently submitted")


def test_submit_wait_returns_zero_on_success_and_one_on_failure(client: Client, workspace: Path, fleet: Procs):
    _define(client, workspace, "ok", "true\n")
    _define(client, workspace, "bad", "exit 4\n")
    assert fleet.cli("submit", "ok", "--wait").returncode == 0
    failed = fleet.cli("submit", "bad", "--wait", "--json")
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["exit_code"] == 4


def test_wait_exit_codes_are_0_succeeded_1_other_end_3_time_out(client: Client, workspace: Path, fleet: Procs):
    _define(client, workspace, "ok", "true\n")
    _define(client, workspace, "slow", "sleep 30\n", timeout=5)
    ok = client.submit("ok")
    assert fleet.cli("wait", ok).returncode == 0
    slow = client.submit("slow")
    timed_out = fleet.cli("wait", slow, "--timeout", "0.5")
    assert timed_out.returncode == 3
    assert "still" in timed_out.stderr
    client.cancel(slow)
    assert fleet.cli("wait", slow).returncode == 1


def test_runs_json_is_a_newest_first_array_of_status_objects(client: Client, workspace: Path, procs: Procs):
    _define(client, workspace, "ok", "true\n")
    ids = [client.submit("ok") for _ in range(3)]
    result = json.loads(procs.cli("runs", "--json").stdout)
    assert [r["id"] for r in result] == ids[::-1]
    assert result[0] == json.loads(procs.cli("status", ids[-1], "--json").stdout)
    assert len(json.loads(procs.cli("runs", "--json", "--limit", "2").stdout)) == 2
    assert json.loads(procs.cli("runs", "--json", "--status", "SUCCEEDED").stdout) == []


def test_cancel_of_a_finished_run_says_so_and_exits_2(client: Client, workspace: Path, fleet: Procs):
    _define(client, workspace, "ok", "true\n")
    run_id = client.submit("ok")
    client.wait(run_id, timeout=30)
    result = fleet.cli("cancel", run_id)
    assert result.returncode == 2
    assert result.stderr.strip() == f"jobledger: run {run_id} already ended: SUCCEEDED"


def test_logs_follow_prints_lines_as_written_and_ends_with_the_run(client: Client, workspace: Path, fleet: Procs):
    _define(client, workspace, "talk", "for i in 1 2 3; do echo line $i; sleep 0.2; done\n")
    run_id = client.submit("talk")
    result = fleet.cli("logs", run_id, "--follow", timeout=30)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == ["line 1", "line 2", "line 3"]
    assert all("[1] stdout" in line for line in lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["status", "not-a-run"], "no run with id not-a-run"),
        (["status", "00000000-0000-4000-8000-000000000000"], "no run with id"),
        (["submit", "nothing-by-this-name"], "no definition named 'nothing-by-this-name'"),
        (["submit", "ok", "--env", "NOEQUALS"], "--env: 'NOEQUALS' is not K=V"),
        (["submit", "ok", "--timeout", "0"], "timeout: must be a positive number of minutes"),
        (["submit", "ok", "--timeout", "-1"], "timeout: must be a positive number of minutes"),
        (["submit", "ok", "--cluster", "nowhere"], "no cluster named 'nowhere'"),
        (["submit", "ok", "--args", "'unclosed"], "args: cannot be split into arguments"),
        (["runs", "--limit", "0"], "--limit: must be at least 1"),
        (["submit"], "the following arguments are required"),
        (["cluster", "create", "bad name"], "cluster: 'bad name' is not a valid name"),
        (["cluster", "create", "c", "--workers", "-1"], "--workers: '-1' is not a whole number of at least 0"),
        (["cluster", "create", "c", "--engine", "flink"], "engine: unknown engine 'flink'; use one of duckdb, spark"),
        (["runs", "--status", "DONE"], "'DONE' is not one of PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED"),
        (["events", "--limit", "x"], "--limit: 'x' is not a whole number"),
    ],
)
def test_bad_input_gets_a_one_line_error_exit_2_and_appends_nothing(
    args: list[str], message: str, client: Client, workspace: Path, procs: Procs
):
    _define(client, workspace, "ok", "true\n")
    before = client.store.length()
    result = procs.cli(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert client.store.length() == before


def test_a_store_that_cannot_be_reached_is_a_one_line_error_exit_4(procs: Procs):
    procs.env["REDIS_URL"] = "redis://127.0.0.1:1/0"
    result = procs.cli("runs")
    assert result.returncode == 4
    assert result.stderr.startswith("jobledger: store unavailable")
    assert len(result.stderr.strip().splitlines()) == 1


def test_events_show_the_runs_lifecycle_in_order(client: Client, workspace: Path, fleet: Procs):
    _define(client, workspace, "ok", "true\n")
    run_id = client.submit("ok")
    client.wait(run_id, timeout=30)
    listed = json.loads(fleet.cli("events", "--aggregate", run_id, "--json").stdout)
    assert [e["type"] for e in listed] == ["RunSubmitted", "RunQueued", "RunStarted", "RunSucceeded"]
    assert [e["version"] for e in listed] == [1, 2, 3, 4]
    text = fleet.cli("events", "--aggregate", run_id).stdout.splitlines()
    assert len(text) == 4 and "RunSucceeded" in text[-1]


def test_replay_verify_is_identical_after_a_workload(client: Client, workspace: Path, fleet: Procs):
    _define(client, workspace, "ok", "true\n")
    _define(client, workspace, "bad", "exit 1\n", retries=1)
    ids = [client.submit(name) for name in ("ok", "bad", "ok")]
    client.cancel(client.submit("ok"))
    for run_id in ids:
        client.wait(run_id, timeout=30)
    result = fleet.cli("replay", "--verify")
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1] == "identical"
    assert "events/s" in result.stdout


def test_the_worker_command_runs_a_burst_worker_for_a_cluster(client: Client, workspace: Path, procs: Procs):
    _define(client, workspace, "ok", "echo hi\n")
    client.create_cluster("batch")
    procs.dispatcher()
    run_id = client.submit("ok", cluster="batch")
    eventually(lambda: client.get_run(run_id)["reason"] == "In queue", what="queued on batch")
    result = procs.cli("worker", "batch", "--burst", timeout=60)
    assert result.returncode == 0, result.stderr
    assert client.get_run(run_id)["status"] == "SUCCEEDED"


def test_the_plain_fleet_command_executes_a_submitted_run(
    client: Client, workspace: Path, procs: Procs, redis_url: str
):
    job_file(workspace, "x.sh", "echo from the fleet\n")
    client.define(definition("fleet", "x.sh"))
    procs.dispatcher()
    run_id = client.submit("fleet")
    eventually(lambda: client.get_run(run_id)["reason"] == "In queue", what="the run to be queued")
    assert procs.worker(redis_url, burst=True).wait(timeout=60) == 0
    assert client.get_run(run_id)["status"] == "SUCCEEDED"
    assert [line.line for line in client.logs(run_id)] == ["from the fleet"]
