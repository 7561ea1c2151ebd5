"""SQL pipeline jobs on DuckDB for real: depots, the seed workflow, formats, save modes, failures, atomic overwrite."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from queue_core import Client, InvalidInput
from tests.support.jobs import sql_definition, sql_output
from tests.support.paths import EXAMPLES
from tests.support.processes import Procs, eventually
from tests.support.s3 import s3_client

PIPELINES = EXAMPLES / "pipelines"


def pipeline(name: str, steps: list[tuple[str, str]], outputs: list[dict[str, Any]], **inputs: str) -> dict[str, Any]:
    """A SQL definition of an inline pipeline; each input is ``ADDRESS:FORMAT``."""
    views = [
        {"name": view, "dataset": spec.rsplit(":", 1)[0], "format": spec.rsplit(":", 1)[1]}
        for view, spec in inputs.items()
    ]
    return sql_definition(name, steps, views, outputs)


def table(warehouse: Path, name: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall()


def read(path: Path) -> list[tuple[Any, ...]]:
    return duckdb.sql(f"SELECT * FROM '{path}' ORDER BY ALL").fetchall()


def test_the_seed_workflow_writes_ten_rows_and_a_second_run_overwrites(
    tmp_path: Path, procs: Procs, redis_url: str, client: Client
):
    procs.fleet(redis_url, cluster="runnable-default")
    lake = tmp_path / "thirdparty"
    shutil.copytree(PIPELINES / "depot", lake)
    assert procs.cli("depot", "add", "thirdparty01", "--type", "local", "--path", str(lake)).returncode == 0
    warehouse = tmp_path / "bq.duckdb"
    assert procs.cli("depot", "add", "bqdepot", "--type", "duckdb", "--path", str(warehouse)).returncode == 0
    defined = procs.cli("define", str(PIPELINES / "bq-write-01.yaml"))
    assert defined.returncode == 0, defined.stderr
    assert defined.stdout.strip() == client.get_definition("city-write-bq-01")["id"]
    assert client.get_cluster("runnable-default")["name"] == "runnable-default"
    for _ in range(2):
        submitted = procs.cli("submit", "city-write-bq-01", "--wait", "--json")
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        run = json.loads(submitted.stdout)
        assert run["status"] == "SUCCEEDED"
        assert len(table(warehouse, "dev.city")) == 10
    (written,) = run["result"]["outputs"]
    assert (written["rows"], written["format"], written["saveMode"]) == (10, "table", "overwrite")
    assert written["columns"][0] == ["city_id", "VARCHAR"] and len(written["preview"]) == 10
    traced = json.loads(procs.cli("lineage", "dataos://bqdepot:dev/city?acl=rw", "--json").stdout)
    assert traced["dataset"] == "dataos://bqdepot:dev/city"
    assert [(w["rows"], w["save_mode"]) for w in traced["writes"]] == [(10, "overwrite"), (10, "overwrite")]
    assert traced["writes"][-1]["run"] == run["id"]
    assert traced["writes"][-1]["inputs"] == ["dataos://thirdparty01:none/city"]
    assert len({w["fingerprint"] for w in traced["writes"]}) == 1
    assert run["id"] in procs.cli("lineage", "dataos://bqdepot:dev/city").stdout
    assert "10 rows written" in procs.cli("submit", "city-write-bq-01", "--wait").stdout
    shown = procs.cli("status", run["id"])
    assert "10 rows written" in shown.stdout and "Springfield" in shown.stdout
    lines = [(line.stream, line.line) for line in client.logs(run["id"])]
    assert any(stream == "stdout" and "plan of step finalDf" in line for stream, line in lines)
    assert any(stream == "jobledger" and '"rows":10' in line for stream, line in lines)


def test_each_file_format_is_read_and_written(lake: Path, tmp_path: Path, client: Client, fleet: Procs):
    outputs = [
        sql_output("big", "dataos://files:out/big", "parquet"),
        sql_output("ny", "dataos://files:out/ny", "json"),
        sql_output("tx", "depot://files:out/tx", "csv"),
    ]
    steps = [
        ("big", "SELECT * FROM city WHERE population > 5000"),
        ("ny", "SELECT city_id, population FROM city WHERE state_code = 'NY'"),
        ("tx", "SELECT city_id, population FROM city WHERE state_code = 'TX'"),
    ]
    client.define(pipeline("split", steps, outputs, city="dataos://files:none/city:csv"))
    assert client.wait(client.submit("split"), timeout=60)["status"] == "SUCCEEDED"
    assert len(read(lake / "out" / "big.parquet")) == 14
    assert len(read(lake / "out" / "ny.json")) == len(read(lake / "out" / "tx.csv")) == 10
    back = [("counted", "SELECT (SELECT count(*) FROM big) AS big, (SELECT count(*) FROM ny) AS ny, "
                        "(SELECT count(*) FROM tx) AS tx")]  # fmt: skip
    inputs = {"big": "dataos://files:out/big:parquet", "ny": "dataos://files:out/ny:json"}
    client.define(
        pipeline(
            "gather",
            back,
            [sql_output("counted", "dataos://wh:sums/counted", "table")],
            **inputs,
            tx="dataos://files:out/tx:csv",
        )
    )
    run = client.wait(client.submit("gather"), timeout=60)
    assert run["status"] == "SUCCEEDED", run
    assert table(tmp_path / "wh.duckdb", "sums.counted") == [(14, 10, 10)]


def test_each_save_mode_means_what_it_means_in_spark(lake: Path, client: Client, fleet: Procs):
    target = lake / "out" / "ids.csv"

    def run_with(mode: str, sql: str) -> dict[str, Any]:
        client.define(pipeline("ids", [("ids", sql)], [sql_output("ids", "dataos://files:out/ids", "csv", mode)]))
        return client.wait(client.submit("ids"), timeout=60)

    assert run_with("errorIfExists", "SELECT 1 AS id")["status"] == "SUCCEEDED"
    refused = run_with("errorIfExists", "SELECT 2 AS id")
    assert (refused["status"], refused["reason"]) == ("FAILED", "NonZeroExitCode")
    assert "exists and saveMode is errorIfExists" in client.run_detail(refused["id"])["message"]
    ignored = run_with("ignore", "SELECT 3 AS id")
    assert ignored["status"] == "SUCCEEDED" and ignored["result"]["outputs"][0]["written"] is False
    assert run_with("append", "SELECT 4 AS id")["status"] == "SUCCEEDED"
    assert read(target) == [(1,), (4,)]
    assert run_with("overwrite", "SELECT 5 AS id")["status"] == "SUCCEEDED"
    assert read(target) == [(5,)]
    assert run_with("append", "SELECT 6 AS id")["result"]["outputs"][0]["rows"] == 2
    assert read(target) == [(5,), (6,)]


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda p: p["inputs"][0].update(dataset="dataos://nowhere:none/city"), "no depot named 'nowhere'"),
        (lambda p: p["outputs"][0].update(name="nostep"), "names no step"),
        (lambda p: p["outputs"][0].update(dataset="s3://bucket/key"), "is not a dataset address"),
        (lambda p: p["outputs"][0]["options"].update(saveMode="replace"), "'replace' is not one of"),
        (lambda p: p["outputs"][0].update(format="table"), "a local depot holds csv, parquet, json"),
        (lambda p: p["outputs"][0].update(format="avro"), "unknown format"),
        (lambda p: p["steps"][0]["sequence"][0].update(name="a-b"), "not a valid view name"),
    ],
)
def test_a_bad_pipeline_is_refused_at_define_time_and_nothing_is_appended(
    lake: Path, client: Client, change: Any, said: str
):
    raw = pipeline(
        "bad", [("s", "SELECT 1")], [sql_output("s", "dataos://files:out/s", "csv")], c="dataos://files:none/city:csv"
    )
    change(raw["config"]["pipeline"])
    before = client.store.last_position()
    with pytest.raises(InvalidInput, match=said):
        client.define(raw)
    assert client.store.last_position() == before


def test_a_bad_workflow_entry_is_a_one_line_error_exit_2_and_defines_none_of_the_entries(
    tmp_path: Path, client: Client, procs: Procs
):
    client.add_depot("thirdparty01", "local", path=str(tmp_path))
    workflow = (PIPELINES / "bq-write-01.yaml").read_text()
    bad = tmp_path / "wf.yaml"
    bad.write_text(workflow)  # bqdepot is not added: the entry names an unknown depot
    before = client.store.last_position()
    result = procs.cli("define", str(bad))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no depot named 'bqdepot'" in result.stderr
    assert client.store.last_position() == before


def test_depots_are_added_once_listed_and_shown(tmp_path: Path, procs: Procs):
    added = procs.cli("depot", "add", "raw", "--type", "local", "--path", str(tmp_path), "--json")
    assert added.returncode == 0 and json.loads(added.stdout)["config"] == {"path": str(tmp_path)}
    s3 = ["depot", "add", "lake", "--type", "s3", "--bucket", "data", "--prefix", "p/", "--region", "eu-west-1"]
    assert procs.cli(*s3).returncode == 0
    listed = json.loads(procs.cli("depot", "list", "--json").stdout)
    assert [(d["name"], d["type"]) for d in listed] == [("lake", "s3"), ("raw", "local")]
    shown = json.loads(procs.cli("depot", "show", "lake", "--json").stdout)
    assert shown["config"] == {"bucket": "data", "prefix": "p", "region": "eu-west-1", "endpoint_url": None}
    assert "s3://data/p" in procs.cli("depot", "list").stdout
    for bad, said in [
        (["depot", "add", "raw", "--type", "local", "--path", "/x"], "already exists"),
        (["depot", "add", "bad-name", "--type", "local", "--path", "/x"], "not a valid depot name"),
        (["depot", "add", "w", "--type", "duckdb", "--bucket", "b", "--path", "/x"], "does not apply"),
        (["depot", "show", "missing"], "no depot named"),
    ]:
        result = procs.cli(*bad)
        assert result.returncode == 2 and said in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_kill_9_of_the_worker_mid_overwrite_leaves_the_previous_output_whole(
    lake: Path, client: Client, procs: Procs, redis_url: str
):
    (worker,) = procs.fleet(redis_url).workers
    target = sql_output("rows", "dataos://files:out/rows", "parquet")
    client.define(pipeline("rows", [("rows", "SELECT range AS i FROM range(3)")], [target]))
    assert client.wait(client.submit("rows"), timeout=60)["status"] == "SUCCEEDED"
    before = (lake / "out" / "rows.parquet").read_bytes()
    big = "SELECT range AS i, md5(range::VARCHAR) AS h, md5(h) AS h2 FROM range(30000000)"
    client.define(pipeline("rows", [("rows", big)], [target]))
    run_id = client.submit("rows")
    eventually(lambda: any(p.name.endswith(".tmp") for p in (lake / "out").iterdir()), what="the temporary output")
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    assert (lake / "out" / "rows.parquet").read_bytes() == before
    assert read(lake / "out" / "rows.parquet") == [(0,), (1,), (2,)]
    assert client.get_run(run_id)["status"] in ("RUNNING", "FAILED")
    procs.worker(redis_url)
    client.define(pipeline("rows", [("rows", "SELECT range AS i FROM range(4)")], [target]))
    assert client.wait(client.submit("rows"), timeout=60)["status"] == "SUCCEEDED"
    assert [p.name for p in (lake / "out").iterdir()] == ["rows.parquet"]  # the killed run's leftover is gone


def test_a_pipeline_in_a_yaml_file_named_by_source_location_runs_like_an_inline_one(
    lake: Path, workspace: Path, client: Client, fleet: Procs
):
    job = pipeline("f", [("ny", "SELECT * FROM city WHERE state_code = 'NY'")], [], city="dataos://files:none/city:csv")
    spec = job["config"]["pipeline"]
    spec["outputs"] = [sql_output("ny", "dataos://files:out/ny", "parquet")]
    (workspace / "pipes").mkdir()
    (workspace / "pipes" / "ny.yaml").write_text(json.dumps({"job": spec}))
    spec["outputs"][0]["name"] = "nostep"
    (workspace / "pipes" / "bad.yaml").write_text(json.dumps(spec))
    for name, location in (("ny", "ny.yaml"), ("bad", "bad.yaml")):
        source = {"type": "WORKSPACE", "sourceDef": {"path": "pipes"}}
        client.define({"name": name, "config": {"type": "SQL", "source": source, "sourceLocation": location}})
    run = client.wait(client.submit("ny", cluster="default"), timeout=60)
    assert run["status"] == "SUCCEEDED" and run["result"]["outputs"][0]["rows"] == 10
    assert len(read(lake / "out" / "ny.parquet")) == 10
    bad = client.wait(client.submit("bad", cluster="default"), timeout=60)
    assert (bad["status"], bad["reason"]) == ("FAILED", "SourceUnavailable")
    assert "bad.yaml.outputs[0].name: names no step" in client.run_detail(bad["id"])["message"]


def test_an_avro_schema_types_the_csv_and_a_row_that_does_not_fit_names_input_line_and_column(
    lake: Path, tmp_path: Path, client: Client, fleet: Procs
):
    schema = "dataos://files:none/schemas/avsc/city.avsc"
    typed = pipeline("typed", [("s", "SELECT * FROM city")], [sql_output("s", "dataos://wh:dev/typed", "table")])
    typed["config"]["pipeline"]["inputs"] = [
        {"name": "city", "dataset": "dataos://files:none/city", "format": "csv", "schemaPath": schema}
    ]
    client.define(typed)
    run = client.wait(client.submit("typed"), timeout=60)
    assert run["status"] == "SUCCEEDED", client.run_detail(run["id"])["message"]
    columns = dict(run["result"]["outputs"][0]["columns"])
    assert (columns["zip_code"], columns["population"], columns["city_id"]) == ("INTEGER", "BIGINT", "VARCHAR")
    lines = (lake / "city.csv").read_text().splitlines()
    fields = lines[7].split(",")
    lines[7] = ",".join([fields[0], "1x0", *fields[2:]])  # line 8 of the file: a zip_code that is no int
    (lake / "city.csv").write_text("\n".join(lines) + "\n")
    failed = client.wait(client.submit("typed"), timeout=60)
    assert (failed["status"], failed["reason"]) == ("FAILED", "NonZeroExitCode")
    message = client.run_detail(failed["id"])["message"]
    assert "input city: line 8, column zip_code does not fit its schema" in message
    assert len(table(tmp_path / "wh.duckdb", "dev.typed")) == 50


def test_a_schema_file_that_is_not_avro_is_refused_at_define_time(lake: Path, client: Client):
    (lake / "schemas" / "avsc" / "bad.avsc").write_text('{"type": "enum"}')
    raw = pipeline("t", [("s", "SELECT 1")], [sql_output("s", "dataos://files:out/s", "csv")])
    raw["config"]["pipeline"]["inputs"] = [
        {"name": "c", "dataset": "dataos://files:none/city", "schemaPath": "dataos://files:none/schemas/avsc/bad.avsc"}
    ]
    with pytest.raises(InvalidInput, match="is not valid Avro"):
        client.define(raw)


def test_a_folder_dataset_is_read_whole_and_overwritten_by_a_new_folder(lake: Path, client: Client, fleet: Procs):
    parts = lake / "parts"
    parts.mkdir()
    (parts / "a.csv").write_text("id,name\n1,one\n2,two\n")
    (parts / "b.csv").write_text("id,name\n3,three\n")
    steps = [("parts", "SELECT * FROM p WHERE id > 1")]
    client.define(
        pipeline(
            "fold", steps, [sql_output("parts", "dataos://files:none/parts", "csv")], p="dataos://files:none/parts:csv"
        )
    )
    run = client.wait(client.submit("fold"), timeout=60)
    assert run["status"] == "SUCCEEDED", client.run_detail(run["id"])["message"]
    assert [p.name for p in parts.iterdir()] == ["part-0.csv"]
    assert read(parts / "part-0.csv") == [(2, "two"), (3, "three")]
    assert sorted(p.name for p in lake.iterdir()) == ["city.csv", "parts", "schemas"]


def test_an_s3_depot_is_read_and_written_whole_against_moto(
    s3_endpoint: str, client: Client, procs: Procs, redis_url: str
):
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true"}
    procs.env.update(creds, AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_CONFIG_FILE="/nonexistent")
    procs.fleet(redis_url)
    s3 = s3_client(s3_endpoint)
    s3.create_bucket(Bucket="lake")
    s3.upload_file(str(PIPELINES / "depot" / "city.csv"), "lake", "raw/city.csv")
    client.add_depot("s3lake", "s3", bucket="lake", prefix="raw", region="us-east-1", endpoint_url=s3_endpoint)
    steps = [("ca", "SELECT city_id, population FROM city WHERE state_code = 'CA'")]
    for mode in ("overwrite", "append"):
        client.define(
            pipeline(
                "s3",
                steps,
                [sql_output("ca", "dataos://s3lake:out/ca", "parquet", mode)],
                city="dataos://s3lake:none/city:csv",
            )
        )
        run = client.wait(client.submit("s3"), timeout=60)
        assert run["status"] == "SUCCEEDED", "\n".join(line.line for line in client.logs(run["id"]))
    assert run["result"]["outputs"][0]["rows"] == 20
    s3.download_file("lake", "raw/out/ca.parquet", str(Path(client.settings.home) / "ca.parquet"))
    assert len(read(Path(client.settings.home) / "ca.parquet")) == 20


def test_jobledger_sql_runs_a_query_as_a_batch_job_without_a_definition(lake: Path, procs: Procs, redis_url: str):
    procs.fleet(redis_url)
    counted = procs.cli("sql", "SELECT state_code, count(*) AS n FROM city GROUP BY ALL ORDER BY 1",
                        "--input", "city=dataos://files:none/city:csv", "--wait", "--json")  # fmt: skip
    assert counted.returncode == 0, counted.stderr
    run = json.loads(counted.stdout)
    assert (run["status"], run["definition"]) == ("SUCCEEDED", "(sql)")
    assert run["result"]["query"]["preview"][0] == ["AL", 10]
    written = procs.cli("sql", "SELECT * FROM city WHERE state_code = 'WA'", "--input", "city=dataos://files:none/city",
                        "--output", "dataos://wh:dev/wa", "--save-mode", "overwrite", "--wait")  # fmt: skip
    assert written.returncode == 0 and "10 rows written" in written.stdout, written.stdout + written.stderr
    refused = procs.cli("sql", "SELECT 1", "--output", "dataos://nowhere:x/y")
    assert refused.returncode == 2 and "no depot named 'nowhere'" in refused.stderr


def test_a_warehouse_locked_by_another_process_is_waited_for_and_its_holder_named(
    lake: Path, tmp_path: Path, client: Client, fleet: Procs
):
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, sys; c = duckdb.connect({str(tmp_path / 'wh.duckdb')!r}); "
         "print('held', flush=True); sys.stdin.readline()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        steps = [("big", "SELECT * FROM city WHERE population > 5000")]
        client.define(pipeline("blocked", steps, [sql_output("big", "dataos://wh:dev/big", "table")],
                               city="dataos://files:none/city:csv"))  # fmt: skip
        run_id = client.submit("blocked")

        def waiting() -> bool:
            return any("locked by another process" in line.line and f"(PID {holder.pid})" in line.line
                       for line in client.logs(run_id))  # fmt: skip

        eventually(waiting, timeout=60, what="the run to say whose lock it waits for")
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=30)
    assert client.wait(run_id, timeout=90)["status"] == "SUCCEEDED"
    assert len(table(tmp_path / "wh.duckdb", "dev.big")) == 14


def test_an_alias_bomb_in_a_pipeline_file_fails_the_attempt_without_expanding(
    lake: Path, workspace: Path, client: Client, fleet: Procs
):
    from tests.test_hostile_inputs import ALIAS_BOMB

    (workspace / "jobs").mkdir(exist_ok=True)
    (workspace / "jobs" / "bomb.yaml").write_text(ALIAS_BOMB)
    client.define(
        {
            "name": "bomb-pipeline",
            "config": {
                "type": "SQL",
                "source": {"type": "WORKSPACE", "sourceDef": {"path": "jobs"}},
                "sourceLocation": "bomb.yaml",
            },
            "cluster": {"name": "default"},
        }
    )
    run = client.wait(client.submit("bomb-pipeline"), timeout=60)
    assert (run["status"], run["reason"]) == ("FAILED", "SourceUnavailable")
    assert "expands to more than" in client.run_detail(run["id"])["message"]
