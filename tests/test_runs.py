"""Runs reach every status and reason for real: real workers, a real dispatcher, real child processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from queue_core import Client, InvalidInput, NotFound
from queue_core.errors import AlreadyTerminal
from tests.support.jobs import definition, job_file, sql_definition
from tests.support.processes import Procs, eventually, pid_alive

pytestmark = pytest.mark.fleet(workers=2)  # the tests that take the fleet get one dispatcher and two workers


def test_a_run_that_exits_zero_succeeds_with_its_output_logged(client: Client, workspace: Path, fleet: Procs):
    job_file(workspace, "ok.sh", 'echo "args: $@"; echo "mode=$MODE"; echo oops >&2\n')
    client.define(definition("ok", "ok.sh", args="--city 'New York' x", env={"MODE": "full"}))
    run_id = client.submit("ok")
    run = client.wait(run_id, timeout=30)
    assert (run["status"], run["reason"], run["exit_code"]) == ("SUCCEEDED", None, 0)
    assert [a["status"] for a in run["attempts"]] == ["SUCCEEDED"]
    lines = [(line.stream, line.line) for line in client.logs(run_id)]
    assert ("stdout", "args: --city New York x") in lines
    assert ("stdout", "mode=full") in lines
    assert ("stderr", "oops") in lines


def test_a_nonzero_exit_fails_with_the_exit_code_kept(client: Client, workspace: Path, fleet: Procs):
    job_file(workspace, "three.sh", "exit 3\n")
    client.define(definition("three", "three.sh"))
    run = client.wait(client.submit("three"), timeout=30)
    assert (run["status"], run["reason"], run["exit_code"]) == ("FAILED", "NonZeroExitCode", 3)
    assert run["attempts"][0]["exit_code"] == 3


def test_a_job_that_succeeds_on_its_third_attempt_is_retried_until_it_does(
    client: Client, workspace: Path, fleet: Procs, tmp_path: Path
):
    counter = tmp_path / "count"
    body = f"""
from pathlib import Path
counter = Path({str(counter)!r})
n = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(n))
print("attempt", n)
raise SystemExit(0 if n >= 3 else 1)
"""
    job_file(workspace, "third.py", body)
    client.define(definition("third", "third.py", kind="PYTHON", retries=2, delay=0.01))
    run = client.wait(client.submit("third"), timeout=60)
    assert run["status"] == "SUCCEEDED"
    assert [a["status"] for a in run["attempts"]] == ["FAILED", "FAILED", "SUCCEEDED"]
    assert counter.read_text() == "3"


def test_waiting_to_retry_is_the_reason_between_attempts(client: Client, workspace: Path, fleet: Procs):
    job_file(workspace, "fail.sh", "exit 1\n")
    client.define(definition("retry-later", "fail.sh", retries=1, delay=5))
    run_id = client.submit("retry-later")
    run = eventually(lambda: (r := client.get_run(run_id))["reason"] == "Waiting to retry" and r, what="retry wait")
    assert run["status"] == "PENDING"
    client.cancel(run_id)
    assert client.get_run(run_id)["status"] == "CANCELLED"


def test_a_missing_entry_file_fails_with_source_unavailable(client: Client, workspace: Path, fleet: Procs):
    job_file(workspace, "other.sh", "true\n")
    client.define(definition("missing", "not-there.sh"))
    run = client.wait(client.submit("missing"), timeout=30)
    assert (run["status"], run["reason"]) == ("FAILED", "SourceUnavailable")
    assert any("not-there.sh" in line.line for line in client.logs(run["id"]))


def test_statuses_move_recently_submitted_then_in_queue_then_running(
    client: Client, workspace: Path, procs: Procs, redis_url: str
):
    job_file(workspace, "wait.sh", "sleep 30\n")
    client.define(definition("stages", "wait.sh", timeout=1))
    run_id = client.submit("stages")
    assert (client.get_run(run_id)["status"], client.get_run(run_id)["reason"]) == (
        "PENDING",
        "Recently submitted",
    )
    procs.dispatcher()
    eventually(lambda: client.get_run(run_id)["reason"] == "In queue", what="In queue")
    procs.worker(redis_url)
    eventually(lambda: client.get_run(run_id)["status"] == "RUNNING", what="RUNNING")
    client.cancel(run_id)


def test_cancel_of_a_pending_run_is_immediate(client: Client, workspace: Path):
    job_file(workspace, "x.sh", "true\n")
    client.define(definition("pend", "x.sh"))
    run_id = client.submit("pend")
    run = client.cancel(run_id)
    assert (run["status"], run["reason"]) == ("CANCELLED", "Cancelled by user")


def test_cancel_of_a_running_run_kills_its_whole_process_group(
    client: Client, workspace: Path, fleet: Procs, tmp_path: Path
):
    pids = tmp_path / "pids"
    job_file(workspace, "tree.sh", f"sleep 300 &\necho $! >> {pids}\necho $$ >> {pids}\nsleep 301\n")
    client.define(definition("tree", "tree.sh", timeout=10))
    run_id = client.submit("tree")
    eventually(lambda: pids.exists() and len(pids.read_text().split()) == 2, what="the job's pids")
    recorded = [int(p) for p in pids.read_text().split()]
    assert all(pid_alive(p) for p in recorded)
    run = client.cancel(run_id)
    assert run["status"] == "CANCELLED"
    eventually(lambda: not any(pid_alive(p) for p in recorded), timeout=2.0, what="the process group to die")
    assert client.get_run(run_id)["attempts"][0]["status"] == "CANCELLED"


def test_cancel_of_a_finished_run_is_refused_and_changes_nothing(client: Client, workspace: Path, fleet: Procs):
    job_file(workspace, "ok.sh", "true\n")
    client.define(definition("done", "ok.sh"))
    run_id = client.submit("done")
    client.wait(run_id, timeout=30)
    before = len(client.events(aggregate=run_id))
    with pytest.raises(AlreadyTerminal, match="SUCCEEDED"):
        client.cancel(run_id)
    assert len(client.events(aggregate=run_id)) == before


def test_the_same_idempotency_key_gives_the_same_run(client: Client, workspace: Path):
    job_file(workspace, "x.sh", "true\n")
    client.define(definition("idem", "x.sh"))
    first = client.submit("idem", idempotency_key="invoice-2026-11")
    second = client.submit("idem", idempotency_key="invoice-2026-11")
    assert first == second
    assert len(client.events(type="RunSubmitted")) == 1


def test_a_run_pins_the_definition_version_it_was_submitted_against(client: Client, workspace: Path):
    job_file(workspace, "x.sh", "true\n")
    client.define(definition("pinned", "x.sh", args="one"))
    first = client.submit("pinned")
    client.define(definition("pinned", "x.sh", args="two"))
    second = client.submit("pinned")
    assert client.get_run(first)["definition_version"] == 1
    assert client.get_run(second)["definition_version"] == 2
    assert client.run_detail(first)["job"]["args"] == "one"


def test_submit_overrides_args_env_and_timeout_for_that_run_only(client: Client, workspace: Path):
    job_file(workspace, "x.sh", "true\n")
    client.define(definition("over", "x.sh", args="a", env={"A": "1"}))
    run_id = client.submit("over", args="b c", env={"B": "2"}, timeout=0.5)
    job = client.run_detail(run_id)["job"]
    assert (job["args"], job["envVars"], job["timeout"]) == ("b c", {"A": "1", "B": "2"}, 0.5)


def test_the_cluster_is_the_one_given_else_the_definitions_and_neither_is_an_error(client: Client, workspace: Path):
    job_file(workspace, "x.sh", "true\n")
    client.define(definition("no-cluster", "x.sh", cluster=None))
    before = len(client.events())
    with pytest.raises(InvalidInput, match="cluster"):
        client.submit("no-cluster")
    with pytest.raises(NotFound, match="nowhere"):
        client.submit("no-cluster", cluster="nowhere")
    assert len(client.events()) == before
    client.create_cluster("gpu", workers=1)
    assert client.get_run(client.submit("no-cluster", cluster="gpu"))["cluster"] == "gpu"


def test_a_clusters_default_engine_is_recorded_and_listed_and_a_definitions_own_engine_wins(
    client: Client, procs: Procs
):
    assert procs.cli("cluster", "create", "lake", "--engine", "Spark").returncode == 0
    listed = {c["name"]: c["engine"] for c in json.loads(procs.cli("cluster", "list", "--json").stdout)}
    assert listed == {"default": "duckdb", "lake": "spark"}
    (registered,) = client.events(type="ClusterRegistered")
    assert registered.event.engine == "spark"  # the default is the cluster's own event: who set it, when
    steps = [("s", "SELECT 1 AS n")]
    own = sql_definition("own", steps, config={"engine": "duckdb"}, dialect="spark")  # Spark SQL, on DuckDB
    client.define({**own, "cluster": {"name": "lake"}})
    client.define({**sql_definition("native", steps), "cluster": {"name": "lake"}})  # DuckDB SQL: DuckDB only
    assert [client.run_detail(client.submit(name))["job"].get("engine") for name in ("own", "native")] == [
        "duckdb",
        None,
    ]


def test_status_json_has_exactly_the_documented_keys(client: Client, workspace: Path, fleet: Procs):
    job_file(workspace, "x.sh", "true\n")
    client.define(definition("keys", "x.sh"))
    run = client.wait(client.submit("keys"), timeout=30)
    assert list(run) == ["id", "definition", "definition_version", "cluster", "status", "reason", "exit_code",
                         "submitted_at", "finished_at", "attempts", "result", "values", "logical_date", "workflow_run",
                         "task", "not_before", "retry_rule", "cause", "tags", "array", "array_parent",
                         "array_index", "title", "workflow_title"]  # fmt: skip
    assert list(run["attempts"][0]) == ["number", "status", "reason", "exit_code", "worker", "started_at",
                                        "finished_at"]  # fmt: skip


def test_runs_lists_newest_first_and_filters(client: Client, workspace: Path):
    job_file(workspace, "x.sh", "true\n")
    client.define(definition("list-a", "x.sh"))
    client.define(definition("list-b", "x.sh"))
    ids = [client.submit("list-a"), client.submit("list-b"), client.submit("list-a")]
    client.cancel(ids[0])
    assert [r["id"] for r in client.list_runs()] == ids[::-1]
    assert [r["id"] for r in client.list_runs(definition="list-a")] == [ids[2], ids[0]]
    assert [r["id"] for r in client.list_runs(status="CANCELLED")] == [ids[0]]
    assert [r["id"] for r in client.list_runs(status="PENDING", definition="list-a")] == [ids[2]]
    assert len(client.list_runs(limit=1)) == 1


def test_the_job_sees_its_run_id_and_attempt_in_its_environment(client: Client, workspace: Path, fleet: Procs):
    job_file(workspace, "env.sh", 'echo "$JOBLEDGER_RUN_ID/$JOBLEDGER_ATTEMPT"\n')
    client.define(definition("env", "env.sh"))
    run_id = client.submit("env")
    client.wait(run_id, timeout=30)
    assert [line.line for line in client.logs(run_id)] == [f"{run_id}/1"]


def test_a_logical_date_is_recorded_on_the_run_and_given_to_the_job(client: Client, workspace: Path, fleet: Procs):
    job_file(workspace, "date.sh", 'echo "date=${JOBLEDGER_LOGICAL_DATE:-none}"\n')
    client.define(definition("dated", "date.sh"))
    dated = client.submit("dated", logical_date="2026-11-21T02:30:00+01:00")
    undated = client.submit("dated")
    assert client.wait(dated, timeout=30)["logical_date"] == "2026-11-21T02:30:00+01:00"
    assert client.wait(undated, timeout=30)["logical_date"] is None
    assert [line.line for line in client.logs(dated)] == ["date=2026-11-21T02:30:00+01:00"]
    assert [line.line for line in client.logs(undated)] == ["date=none"]


def test_a_malformed_logical_date_is_refused_with_nothing_appended(client: Client, workspace: Path):
    job_file(workspace, "x.sh", "true\n")
    client.define(definition("dated-bad", "x.sh"))
    before = len(client.events())
    with pytest.raises(InvalidInput, match="logical-date: '2026-13-40' is not a date"):
        client.submit("dated-bad", logical_date="2026-13-40")
    assert len(client.events()) == before
