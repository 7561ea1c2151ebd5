"""Pre-runs for real: outputs land in scratch, the real datasets stay as they were, and lineage, references,
schedules and triggers take no notice; the report compares with the last real run; --clean removes scratch."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from queue_core import Client
from queue_core.errors import InvalidInput
from queue_core.services.workflow_runs import WorkflowEngine
from queue_core.specs.pipelines import normalize_pipeline
from queue_core.specs.preruns import scratch_pipeline, scratch_schema
from queue_core.timefmt import parse_utc
from scheduler.follow_ups import FollowUps
from scheduler.maintenance import Maintenance
from tests.support.jobs import definition, job_file, sql_output
from tests.support.processes import Procs

BIG = "dataos://wh:sales/big"
COUNTED = "dataos://files:out/counted"


def _sql_task(inputs: list[Any], steps: list[tuple[str, str]], outputs: list[Any], **more: Any) -> dict[str, Any]:
    sequence = [{"name": n, "sql": s} for n, s in steps]
    pipeline = {"inputs": inputs, "steps": [{"sequence": sequence}], "outputs": outputs}
    return {"job": {"type": "SQL", "timeout": 1, "pipeline": pipeline}, **more}


def city_etl(workspace: Path, where: str, extra: str = "") -> dict[str, Any]:
    note = job_file(workspace, "note.sh", 'echo "prerun=${JOBLEDGER_PRERUN:-0}"\n')
    return {
        "name": "city-etl",
        "tasks": {
            "big": _sql_task(
                [{"name": "city", "dataset": "dataos://files:none/city", "format": "csv"}],
                [("big", f"SELECT *{extra} FROM city WHERE {where}")],
                [sql_output("big", BIG, "table")],
            ),
            "count": _sql_task(
                [{"name": "big", "dataset": BIG, "format": "table"}],
                [("counted", "SELECT count(*) AS n FROM big")],
                [sql_output("counted", COUNTED, "csv")],
                depends_on=["big"],
            ),
            "note": {"job": definition("x", note)["config"], "depends_on": ["count"]},
        },
    }


def rows(warehouse: Path, table: str) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        found = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(found[0]) if found else -1


def test_scratch_pipeline_points_outputs_and_upstream_inputs_at_each_depots_scratch():
    pipeline = normalize_pipeline(
        {
            "inputs": [{"name": "a", "dataset": "dataos://lake:raw/a", "format": "csv"},
                       {"name": "b", "dataset": "dataos://wh:sales/b", "format": "table"}],
            "steps": [{"sequence": [{"name": "c", "sql": "SELECT 1"}, {"name": "d", "sql": "SELECT 2"}]}],
            "outputs": [sql_output("c", "dataos://lake:out/c", "parquet"),
                        sql_output("d", "dataos://wh:sales/d", "table")],
        }
    )  # fmt: skip
    depots = {
        "lake": {"name": "lake", "type": "local", "config": {"path": "/data/lake"}},
        "wh": {"name": "wh", "type": "duckdb", "config": {"path": "/data/wh.duckdb"}},
    }
    run = "0123abcd-4567-89ef-0123-456789abcdef"
    out, named = scratch_pipeline(pipeline, depots, run, written=["dataos://wh:sales/b"])
    c, d = out["outputs"]
    assert (c["dataset"]["depot"], c["scratch"]) == ("_prerun_lake", f"/data/lake/_prerun/{run}/out/c")
    assert named["_prerun_lake"]["config"]["path"] == f"/data/lake/_prerun/{run}"
    assert (d["dataset"]["depot"], d["dataset"]["collection"], d["dataset"]["dataset"]) == (
        "wh", "prerun_0123abcd4567", "sales__d"
    )  # fmt: skip
    assert c["dataset"]["address"] == "dataos://lake:out/c"  # the real address, for the report
    a, b = out["inputs"]
    assert a == pipeline["inputs"][0]  # read as it is: no task of the pre-run writes it
    assert (b["dataset"]["collection"], b["dataset"]["dataset"]) == ("prerun_0123abcd4567", "sales__b")
    assert named["lake"] == depots["lake"] and pipeline["outputs"][0]["dataset"]["depot"] == "lake"  # unchanged


@pytest.mark.usefixtures("fleet")
def test_a_prerun_writes_scratch_only_and_counts_for_no_lineage_reference_schedule_or_trigger(
    client: Client, lake: Path, workspace: Path, tmp_path: Path, settings: Any, procs: Procs
):
    warehouse = tmp_path / "wh.duckdb"
    client.apply_workflow(city_etl(workspace, "population > 5000"))
    real = client.wait_workflow_run(client.run_workflow("city-etl"), timeout=90)
    assert real["status"] == "SUCCEEDED", real
    assert (rows(warehouse, "sales.big"), (lake / "out" / "counted.csv").read_text()) == (14, "n\n14\n")
    lineage_before = {d: client.lineage(d)["writes"] for d in (BIG, COUNTED)}
    # What else could notice the pre-run: a trigger on its output, a schedule of the workflow, a workflow
    # waiting for a succeeded run of it for the same day.
    client.define({**definition("on-big", job_file(workspace, "ok.sh", "true\n")), "trigger": {"datasets": [BIG]}})
    follow_ups = FollowUps(Client(settings=settings))
    follow_ups.run_pass()
    client.create_schedule("nightly", workflow="city-etl", cron="0 3 * * *")
    schedule_before = client.get_schedule("nightly")
    # Version 2 keeps more rows and adds a column: the report says so, against the real run.
    client.apply_workflow(city_etl(workspace, "population > 1000", ", 1 AS batch"))

    done = procs.cli("workflow", "prerun", "city-etl", "--wait", "--timeout", "90")
    assert done.returncode == 0, done.stdout + done.stderr
    prerun = done.stdout.split()[1]
    assert "task count: SUCCEEDED" in done.stdout and "schema changed: added batch" in done.stdout
    report = client.prerun_report(prerun)
    (big,) = report["tasks"]["big"]["outputs"]
    assert (big["dataset"], big["last_real"]["rows"], big["schema"], big["added"]) == (BIG, 14, "changed", ["batch"])
    assert big["rows"] > 14 and big["scratch"].endswith(f"{scratch_schema(prerun)}.sales__big")
    (counted,) = report["tasks"]["count"]["outputs"]
    assert counted["schema"] == "same" and counted["rows"] == 1
    # The outputs are in scratch (the count read the pre-run's own big), the real datasets as they were.
    scratch_csv = lake / "_prerun" / prerun / "out" / "counted.csv"
    assert scratch_csv.read_text() == f"n\n{big['rows']}\n"
    assert rows(warehouse, f"{scratch_schema(prerun)}.sales__big") == big["rows"]
    assert (rows(warehouse, "sales.big"), (lake / "out" / "counted.csv").read_text()) == (14, "n\n14\n")
    note = client.get_workflow_run(prerun)["tasks"]["note"]["run"]
    assert any("prerun=1" in line.line for line in client.logs(note))
    assert client.get_workflow_run(prerun)["prerun"] is True
    # Lineage, triggers, schedules and references took no notice.
    assert {d: client.lineage(d)["writes"] for d in (BIG, COUNTED)} == lineage_before
    follow_ups.run_pass()
    assert [r for r in client.events(type="TriggerFired")] == []
    assert client.get_schedule("nightly") == schedule_before
    waiting = {"name": "after-etl", "tasks": {"t": {"job": definition("t", "ok.sh")["config"]}},
               "references": [{"workflow": "city-etl"}]}  # fmt: skip
    client.apply_workflow(waiting)
    after = client.run_workflow("after-etl", logical_date=client.get_workflow_run(prerun)["logical_date"])
    WorkflowEngine(client.store).advance(after)
    assert client.get_workflow_run(after)["reason"] == "Waiting for reference city-etl"
    # --clean removes the scratch: the folder and the schema; the report says so.
    cleaned = procs.cli("workflow", "prerun", "city-etl", "--clean", "--json")
    assert cleaned.returncode == 0, cleaned.stderr
    (removed,) = json.loads(cleaned.stdout)
    assert removed == {"id": prerun, "workflow": "city-etl", "removed": ["files", "wh"], "failed": []}
    assert not (lake / "_prerun" / prerun).exists()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        schemas = {r[0] for r in con.execute("SELECT schema_name FROM duckdb_schemas()").fetchall()}
    assert scratch_schema(prerun) not in schemas and "sales" in schemas
    assert client.prerun_report(prerun)["scratch"]["status"] == "removed"
    with pytest.raises(InvalidInput, match="is not a pre-run"):
        client.prerun_report(after)


def _csv(path: Path) -> list[tuple[Any, ...]]:
    return sorted(duckdb.sql(f"SELECT * FROM read_csv('{path}')").fetchall(), key=repr)


@pytest.mark.usefixtures("fleet")
def test_an_enos_builtin_workflow_runs_and_its_prerun_writes_scratch_until_the_retention_expires(
    client: Client, lake: Path, settings: Any, procs: Procs, tmp_path: Path
):
    (lake / "events.csv").write_text("id,state,at\n1,new,1\n1,done,2\n2,new,1\n")
    enos = {
        "name": "dedup-profile",
        "tasks": [
            {"name": "dedup", "type": "BUILTIN", "builtin": "deduplicate@1",
             "params": {"input": "dataos://files:none/events", "inputFormat": "csv", "key": ["id"], "latestBy": "at",
                        "output": "dataos://files:out/latest", "outputFormat": "csv"}},
            {"name": "prof", "type": "BUILTIN", "builtin": "profile@1",
             "params": {"input": "dataos://files:out/latest", "inputFormat": "csv",
                        "output": "dataos://files:out/profile", "outputFormat": "csv"}},
        ],
        "relations": [{"from": "dedup", "to": "prof"}],
    }  # fmt: skip
    path = tmp_path / "dedup-profile.yaml"
    path.write_text(json.dumps(enos))  # JSON is YAML
    assert procs.cli("workflow", "apply", str(path)).returncode == 0
    real = client.wait_workflow_run(client.run_workflow("dedup-profile"), timeout=60)
    assert real["status"] == "SUCCEEDED", real
    assert _csv(lake / "out" / "latest.csv") == [(1, "done", 2), (2, "new", 1)]
    profiled = {r[1]: r[3] for r in _csv(lake / "out" / "profile.csv")}  # column -> rows
    assert profiled["id"] == 2

    # A third key arrives; the pre-run's built-ins write scratch only, the profile reading the scratch copy.
    (lake / "events.csv").write_text("id,state,at\n1,new,1\n1,done,2\n2,new,1\n3,new,5\n")
    prerun = client.prerun_workflow("dedup-profile")
    assert client.wait_workflow_run(prerun, timeout=60)["status"] == "SUCCEEDED"
    scratch = lake / "_prerun" / prerun / "out"
    assert _csv(scratch / "latest.csv") == [(1, "done", 2), (2, "new", 1), (3, "new", 5)]
    assert {r[1]: r[3] for r in _csv(scratch / "profile.csv")}["id"] == 3
    assert _csv(lake / "out" / "latest.csv") == [(1, "done", 2), (2, "new", 1)]  # the real ones as they were
    assert {r[1]: r[3] for r in _csv(lake / "out" / "profile.csv")}["id"] == 2

    # Retention, on an injected clock: kept until it has passed since the pre-run ended, then removed.
    retention = settings.prerun_retention_hours * 3600
    ended = parse_utc(client.get_workflow_run(prerun)["finished_at"])
    maintenance = Maintenance(settings, client.store.redis, client.store, "d1")
    maintenance.expire_prerun_scratch(ended + timedelta(seconds=retention - 1))
    assert scratch.exists() and client.prerun_report(prerun)["scratch"]["status"] == "kept"
    maintenance.expire_prerun_scratch(ended + timedelta(seconds=retention))
    assert not (lake / "_prerun" / prerun).exists()
    assert client.prerun_report(prerun)["scratch"]["status"] == "removed"
    assert (lake / "out" / "latest.csv").exists()
    assert [list(r.event.depots) for r in client.events(type="PrerunScratchRemoved")] == [["files"]]
