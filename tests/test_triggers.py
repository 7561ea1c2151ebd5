"""Data-aware triggers for real: a SQL run's outputs fire dataset triggers (any, all), two schedulers racing
fire once, and files arriving in a local folder or in moto's S3 fire files triggers, each file once; a trigger
on a workflow starts a workflow run."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from queue_core import Client
from scheduler.follow_ups import FollowUps
from tests.support.jobs import definition, job_file, native, shell_task, sql_definition, sql_output
from tests.support.processes import Procs
from tests.support.s3 import FAKE_KEY_ID, FAKE_SECRET, s3_client

A, B = "dataos://wh:dev/a", "dataos://wh:dev/b"


def writer(name: str, dataset: str) -> dict:
    return sql_definition(
        name,
        [("s", "SELECT city_id FROM city")],
        [{"name": "city", "dataset": "dataos://files:none/city", "format": "csv"}],
        [sql_output("s", f"{dataset}?acl=rw", "table")],
        timeout=2,
    )


def triggered(workspace: Path, name: str, trigger: dict) -> dict:
    return {**definition(name, job_file(workspace, "ok.sh", "true\n")), "trigger": trigger}


def fires(client: Client, name: str) -> list:
    target = client.get_definition(name)["id"]
    return [r.event for r in client.events(type="TriggerFired") if r.event.target == target]  # type: ignore[attr-defined]


def test_a_sql_runs_outputs_fire_any_and_all_dataset_triggers_once_with_two_schedulers(
    client: Client, fleet: Procs, lake: Path, workspace: Path, settings
):
    client.define(writer("write-a", A))
    client.define(writer("write-b", B))
    client.define(triggered(workspace, "on-any", {"datasets": [A, B], "mode": "any"}))
    client.define(triggered(workspace, "on-all", {"datasets": [A, B], "mode": "all"}))
    schedulers = [FollowUps(Client(settings=settings)) for _ in range(2)]
    for scheduler in schedulers:
        scheduler.run_pass()  # started before the writes

    def race() -> None:
        barrier = threading.Barrier(2)

        def one(scheduler: FollowUps) -> None:
            barrier.wait()
            scheduler.run_pass()

        threads = [threading.Thread(target=one, args=(s,)) for s in schedulers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert client.wait(client.submit("write-a"), timeout=60)["status"] == "SUCCEEDED"
    race()
    (fired,) = fires(client, "on-any")
    assert (fired.reason, tuple(fired.datasets)) == ("datasets", (A,))
    assert fires(client, "on-all") == []
    assert client.get_trigger("on-all")["pending"] == [A]
    run = client.get_run(fired.run)
    assert run["cause"]["datasets"] == [A] and run["logical_date"] == fired.fired_at
    assert client.wait(client.submit("write-b"), timeout=60)["status"] == "SUCCEEDED"
    race()
    race()
    assert [tuple(f.datasets) for f in fires(client, "on-any")] == [(A,), (B,)]
    assert [tuple(f.datasets) for f in fires(client, "on-all")] == [(A, B)]
    assert client.get_trigger("on-all")["pending"] == []
    shown = json.loads(Procs.cli(fleet, "trigger", "show", "on-all", "--json").stdout)
    assert shown["fired"] == 1 and shown["last_run"]["datasets"] == [A, B]


def test_files_arriving_in_a_local_folder_fire_once_each(client: Client, workspace: Path, tmp_path: Path):
    incoming = tmp_path / "drop" / "incoming"
    incoming.mkdir(parents=True)
    client.add_depot("drop", "local", path=str(tmp_path / "drop"))
    trigger = {"files": {"depot": "drop", "prefix": "incoming", "pattern": "*.csv"}}
    client.define(triggered(workspace, "on-files", trigger))
    scheduler = FollowUps(client, file_poll_seconds=0)
    scheduler.run_pass()
    (incoming / "one.csv").write_text("x\n")
    (incoming / "_partial.csv").write_text("x\n")  # hidden: still being written
    scheduler.run_pass()
    scheduler.run_pass()
    (incoming / "two.csv").write_text("x\n")
    (incoming / "notes.txt").write_text("x\n")
    scheduler.run_pass()
    assert [tuple(f.files) for f in fires(client, "on-files")] == [("one.csv",), ("two.csv",)]
    run = client.get_run(fires(client, "on-files")[-1].run)
    assert run["cause"] == {"reason": "files", "source": client.get_trigger("on-files")["id"], "files": ["two.csv"]}


def test_files_arriving_in_s3_fire_a_files_trigger(
    client: Client, workspace: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    s3 = s3_client(s3_endpoint)
    s3.create_bucket(Bucket="arrivals")
    client.add_depot("landing", "s3", bucket="arrivals", prefix="lake", region="us-east-1", endpoint_url=s3_endpoint)
    client.define(triggered(workspace, "on-s3", {"files": {"depot": "landing", "prefix": "in"}}))
    scheduler = FollowUps(client, file_poll_seconds=0)
    scheduler.run_pass()
    s3.put_object(Bucket="arrivals", Key="lake/in/a.parquet", Body=b"x")
    s3.put_object(Bucket="arrivals", Key="lake/in/deeper/b.parquet", Body=b"x")  # below the prefix: not watched
    scheduler.run_pass()
    scheduler.run_pass()
    assert [tuple(f.files) for f in fires(client, "on-s3")] == [("a.parquet",)]


def test_a_trigger_naming_an_unknown_depot_is_refused_and_nothing_is_appended(
    procs: Procs, client: Client, workspace: Path, tmp_path: Path
):
    path = tmp_path / "def.json"
    path.write_text(json.dumps(triggered(workspace, "on-nothing", {"files": {"depot": "nowhere"}})))
    before = client.store.length()
    refused = procs.cli("define", str(path))
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "nowhere" in refused.stderr and "Traceback" not in refused.stderr
    assert client.store.length() == before


def test_a_files_trigger_on_a_workflow_starts_a_workflow_run_with_its_cause(
    client: Client, workspace: Path, tmp_path: Path
):
    (tmp_path / "drop").mkdir()
    client.add_depot("flows", "local", path=str(tmp_path / "drop"))
    trigger = {"files": {"depot": "flows", "pattern": "*.csv"}}
    client.apply_workflow({**native("ingest", {"load": shell_task(workspace, "load")}), "trigger": trigger})
    scheduler = FollowUps(client, file_poll_seconds=0)
    scheduler.run_pass()
    (tmp_path / "drop" / "orders.csv").write_text("x\n")
    scheduler.run_pass()
    scheduler.run_pass()
    target = client.get_trigger("ingest")
    (fired,) = [r.event for r in client.events(type="TriggerFired")]
    assert fired.workflow_run and fired.run is None and tuple(fired.files) == ("orders.csv",)  # type: ignore[attr-defined]
    flow = client.get_workflow_run(fired.workflow_run)  # type: ignore[attr-defined]
    assert (flow["workflow"], flow["logical_date"]) == ("ingest", fired.fired_at)  # type: ignore[attr-defined]
    assert target["last_run"] == {
        "kind": "workflow_run",
        "id": fired.workflow_run,  # type: ignore[attr-defined]
        "reason": "files",
        "datasets": [],
        "files": ["orders.csv"],
    }
