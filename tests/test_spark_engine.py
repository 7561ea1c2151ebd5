"""SQL pipelines on Spark for real (PySpark, ``local[2]``): the seed Flare job, one dialect on both engines,
lineage and preview, cancel, PostgreSQL over JDBC, S3 over s3a or refused, a cluster's default engine; skipped,
saying why, where PySpark or Java (or, for PostgreSQL, the server or the JDBC driver; for s3a, the Hadoop AWS
connector) is missing."""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from queue_core import Client, InvalidInput
from queue_core.errors import SparkUnavailable
from queue_core.services.spark import JARS_VARIABLE, postgres_driver_missing, spark_jars, spark_missing
from queue_core.specs.definitions import normalize_definition
from tests.support.jobs import sql_definition, sql_output
from tests.support.paths import EXAMPLES
from tests.support.postgres import own_schema
from tests.support.processes import Procs, eventually

MISSING = spark_missing()
pytestmark = [
    pytest.mark.skipif(MISSING is not None, reason=f"Spark tests need {MISSING}"),
    pytest.mark.fleet(cluster="runnable-default", env={"JOBLEDGER_SPARK_MASTER": "local[2]"}),
]
PIPELINES = EXAMPLES / "pipelines"
# Spark SQL with functions DuckDB spells differently: date_format, concat_ws, collect_list, nvl.
SPARK_STEP = (
    "SELECT state_code, concat_ws('/', state_code, state_name) AS label, "
    "date_format(to_date('2024-03-05'), 'yyyy-MM') AS month, "
    "sort_array(collect_list(city_name)) AS cities, nvl(max(county_name), 'none') AS county "
    "FROM city_connect GROUP BY state_code, state_name"
)


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """One Spark session for the module's in-process runs: Spark's start is the slow part."""
    from workers.sql.spark_engine import spark_session

    session = spark_session("jobledger tests", "local[2]", spark_jars())
    yield session
    session.stop()


def _seed(engine: str | None = None, sql: str | None = None) -> dict[str, Any]:
    """The seed Flare job (examples/pipelines/bq-write-01.yaml) as a definition, on ``engine``, its step ``sql``."""
    from queue_core.specs.documents import load_document
    from queue_core.specs.pipelines import workflow_definitions

    doc = load_document(PIPELINES / "bq-write-01.yaml")
    spec = doc["workflow"]["dag"][0]["spec"]
    if engine is not None:
        spec["engine"] = engine
    if sql is not None:
        spec["stackSpec"]["job"]["steps"][0]["sequence"][0]["sql"] = sql
    (raw,) = workflow_definitions(doc)
    return dict(raw)


def _spec(definition: dict[str, Any], lake: Path, run_dir: Path, warehouse: Path) -> dict[str, Any]:
    run_dir.mkdir(parents=True)
    depots = {
        "thirdparty01": {"type": "local", "config": {"path": str(lake)}},
        "bqdepot": {"type": "duckdb", "config": {"path": str(warehouse)}},
    }
    pipeline = normalize_definition(definition)["config"]["pipeline"]
    return {"pipeline": pipeline, "depots": depots, "run_dir": str(run_dir), "result_path": str(run_dir / "r.json")}


def test_spark_sql_functions_duckdb_spells_differently_give_the_same_rows_on_both_engines(
    spark: Any, tmp_path: Path
) -> None:
    from workers.sql import runner, spark_engine

    lake = tmp_path / "lake"
    shutil.copytree(PIPELINES / "depot", lake)
    rows = {}
    for engine in ("duckdb", "spark"):
        definition = _seed(engine, SPARK_STEP)
        spec = _spec(definition, lake, tmp_path / engine, tmp_path / f"{engine}.duckdb")
        if engine == "spark":
            spark_engine.run_pipeline(spec, spark=spark)
        else:
            assert spec["pipeline"]["steps"][0]["sql"] != SPARK_STEP  # transpiled at define
            runner.run_pipeline(spec)
        with duckdb.connect(str(tmp_path / f"{engine}.duckdb"), read_only=True) as con:
            rows[engine] = con.execute("SELECT * FROM dev.city ORDER BY state_code").fetchall()
    assert rows["duckdb"] == rows["spark"] and len(rows["spark"]) > 1
    assert rows["spark"][0][2] == "2024-03"


def test_the_seed_flare_job_on_spark_writes_ten_rows_and_a_second_run_overwrites_them(
    spark: Any, tmp_path: Path
) -> None:
    from workers.sql import runner, spark_engine

    warehouse = tmp_path / "bq.duckdb"
    for k in range(2):
        spec = _spec(_seed("spark"), PIPELINES / "depot", tmp_path / f"run-{k}", warehouse)
        (written,) = spark_engine.run_pipeline(spec, spark=spark)["outputs"]
        assert (written["rows"], written["saveMode"], written["written"]) == (10, "overwrite", True)
        with duckdb.connect(str(warehouse), read_only=True) as con:
            assert con.execute("SELECT count(*) FROM dev.city").fetchone() == (10,)
    assert written["columns"][0] == ["city_id", "VARCHAR"] and len(written["preview"]) == 10
    on_duckdb = tmp_path / "on-duckdb.duckdb"
    runner.run_pipeline(_spec(_seed(), PIPELINES / "depot", tmp_path / "run-duckdb", on_duckdb))
    rows = []
    for path in (warehouse, on_duckdb):
        with duckdb.connect(str(path), read_only=True) as con:
            rows.append(con.execute("SELECT * FROM dev.city ORDER BY ALL").fetchall())
    assert rows[0] == rows[1]  # the same 10 rows as on DuckDB


def test_a_spark_sql_construct_that_does_not_transpile_is_refused_at_define_naming_it(
    client: Client, tmp_path: Path
) -> None:
    client.add_depot("thirdparty01", "local", path=str(PIPELINES / "depot"))
    client.add_depot("bqdepot", "duckdb", path=str(tmp_path / "bq.duckdb"))
    before = len(client.events())
    with pytest.raises(InvalidInput) as refused:
        client.define(_seed(None, "SELECT /*+ BROADCAST(c) */ * FROM city_connect c"))
    assert "Hints are not supported" in str(refused.value) and "engine: spark" in str(refused.value)
    assert "does not transpile" in str(refused.value) and len(client.events()) == before
    assert client.define(_seed("spark", "SELECT /*+ BROADCAST(c) */ * FROM city_connect c"))


# The run's engine comes from its cluster: the seed names none, and runnable-default's default is spark.
def test_the_seed_without_an_engine_on_a_spark_default_cluster_runs_on_spark_with_its_lineage_preview_and_plan(
    tmp_path: Path, client: Client, fleet: Procs
) -> None:
    created = fleet.cli("cluster", "create", "runnable-default", "--engine", "spark", "--workers", "0", "--json")
    assert created.returncode == 0 and json.loads(created.stdout)["engine"] == "spark", created.stderr
    (registered,) = [r for r in client.events(type="ClusterRegistered") if r.event.name == "runnable-default"]
    assert registered.event.engine == "spark"  # the default is in the cluster's own event: auditable
    lake = tmp_path / "thirdparty"
    shutil.copytree(PIPELINES / "depot", lake)
    client.add_depot("thirdparty01", "local", path=str(lake))
    warehouse = tmp_path / "bq.duckdb"
    client.add_depot("bqdepot", "duckdb", path=str(warehouse))
    client.define(_seed())  # no engine: its steps transpiled for DuckDB at define, their Spark SQL kept
    submitted = fleet.cli("submit", "city-write-bq-01", "--wait", "--json", timeout=300)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    run = json.loads(submitted.stdout)
    assert run["status"] == "SUCCEEDED", run
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM dev.city").fetchone() == (10,)
    (written,) = run["result"]["outputs"]
    assert (written["rows"], written["format"], written["saveMode"]) == (10, "table", "overwrite")
    assert written["columns"][0] == ["city_id", "VARCHAR"] and len(written["preview"]) == 10
    traced = json.loads(fleet.cli("lineage", "dataos://bqdepot:dev/city", "--json").stdout)
    assert [(w["rows"], w["save_mode"]) for w in traced["writes"]] == [(10, "overwrite")]
    assert traced["writes"][-1]["run"] == run["id"]
    assert traced["writes"][-1]["inputs"] == ["dataos://thirdparty01:none/city"]
    shown = fleet.cli("status", run["id"])
    assert "10 rows written" in shown.stdout and "Springfield" in shown.stdout
    lines = [(line.stream, line.line) for line in client.logs(run["id"])]
    assert any("spark: session on local[2]" in line for _, line in lines), lines
    assert any(stream == "stdout" and "plan of step finalDf" in line for stream, line in lines)
    job = client.run_detail(run["id"])["job"]
    assert job["engine"] == "spark" and "spark_sql" not in job["pipeline"]["steps"][0]  # recorded at submit


def _spark_driver_of(run_id: str) -> list[int]:
    """The pids of the Spark driver JVM started for ``run_id`` (its command line names the run)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if f"jobledger-{run_id}".encode() in cmdline and b"java" in cmdline:
                found.append(int(entry.name))
    return found


# In the worker's bubblewrap sandbox, as every SQL job runs outside tests: the JVM starts and runs there.
@pytest.mark.fleet(cluster="runnable-default", env={"JOBLEDGER_SPARK_MASTER": "local[2]", "JOBLEDGER_SANDBOX": "on"})
def test_cancel_of_a_sandboxed_running_spark_pipeline_stops_its_job_and_its_driver(client: Client, fleet: Procs):
    endless = "SELECT count(*) AS n FROM range(0, 1000000000000) a"
    slow = sql_definition("slow", [("n", endless)], [], [], timeout=10, config={"engine": "spark"}, dialect="spark")
    client.define({**slow, "cluster": {"name": "runnable-default"}})
    run_id = client.submit("slow")

    def running() -> bool:
        return any("spark: session on" in line.line for line in client.logs(run_id)) and bool(_spark_driver_of(run_id))

    eventually(running, timeout=240, what="the Spark job to run")
    client.cancel(run_id)
    assert client.wait(run_id, timeout=60)["status"] == "CANCELLED"
    eventually(lambda: not _spark_driver_of(run_id), timeout=60, what="the Spark driver to stop")


def test_submit_of_a_spark_pipeline_without_pyspark_says_what_is_missing_in_one_line(
    lake: Path, client: Client, procs: Procs
) -> None:
    client.define(sql_definition("s", [("n", "SELECT 1 AS n")], [], [], config={"engine": "spark"}, dialect="spark"))
    env = {**procs.env, "PATH": "/nonexistent", "JAVA_HOME": ""}
    procs.env = env
    out = procs.cli("submit", "s")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "lacks" in out.stderr and "Java 17" in out.stderr


# -- PostgreSQL over JDBC ----------------------------------------------------------------------------------------

PG_PASSWORD = "pg-Spark-Secret-41c7"  # trust auth ignores it: the point is where it must never show up


@pytest.fixture
def pg() -> Iterator[tuple[str, str, Any]]:
    """(DSN, a schema of this test's own, a connection) when Spark can reach PostgreSQL over JDBC here."""
    missing = postgres_driver_missing()
    if missing is not None:
        pytest.skip(f"PostgreSQL over JDBC needs {missing}")
    with own_schema() as made:
        yield made


def _pg_run(spark: Any, tmp_path: Path, dsn: str, definition: dict[str, Any]) -> dict[str, Any]:
    """Run ``definition`` in this process on the module's session, depot ``pg`` with its password given."""
    from workers.sql import spark_engine

    run_dir = tmp_path / f"run-{len(list(tmp_path.glob('run-*')))}"
    run_dir.mkdir()
    depots = {
        "pg": {"type": "postgres", "config": {"dsn": dsn, "password_secret": "pgpass"}},
        "wh": {"type": "duckdb", "config": {"path": str(tmp_path / "wh.duckdb")}},
    }
    pipeline = normalize_definition(definition)["config"]["pipeline"]
    spec = {"pipeline": pipeline, "depots": depots, "run_dir": str(run_dir), "result_path": str(run_dir / "r.json")}
    return dict(spark_engine.run_pipeline(spec, {"pg": PG_PASSWORD}, spark=spark))


def _on_spark(name: str, sql: str, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """A pipeline on Spark with one Spark SQL step ``s``, its plan printed (where a password must not be)."""
    return sql_definition(
        name, [("s", sql)], inputs, outputs, config={"engine": "spark"}, dialect="spark", explain=True
    )


def test_postgresql_to_spark_to_a_duckdb_warehouse(
    pg: tuple[str, str, Any], spark: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from decimal import Decimal

    from psycopg import sql

    dsn, schema, conn = pg
    orders = sql.Identifier(schema, "orders")
    conn.execute(sql.SQL("CREATE TABLE {} (id int, city text, amount numeric(10,2), placed date)").format(orders))
    conn.execute(
        sql.SQL("INSERT INTO {} VALUES (1, 'Oslo', 10.25, '2024-03-01'), (2, 'Oslo', 20.25, '2024-03-05'), "
                "(3, 'Bergen', 7.50, '2024-02-11'), (4, NULL, 1.00, NULL)").format(orders)
    )  # fmt: skip
    step = "SELECT city, count(*) AS n, sum(amount) AS total, date_format(max(placed), 'yyyy-MM') AS month FROM t "
    step += "WHERE city IS NOT NULL GROUP BY city"
    source = [{"name": "t", "dataset": f"dataos://pg:{schema}/orders", "format": "table"}]
    definition = _on_spark("pg-to-wh", step, source, [sql_output("s", "dataos://wh:sales/by_city", "table")])
    result = _pg_run(spark, tmp_path, dsn, definition)
    (written,) = result["outputs"]
    assert result["inputs"] == [f"dataos://pg:{schema}/orders"] and written["rows"] == 2
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT * FROM sales.by_city ORDER BY city").fetchall()
    assert rows == [("Bergen", 1, Decimal("7.50"), "2024-02"), ("Oslo", 2, Decimal("30.50"), "2024-03")]
    seen = capfd.readouterr()
    assert "plan of step s:" in seen.out and "JDBCRelation" in seen.out  # read over JDBC, its plan printed
    assert PG_PASSWORD not in seen.out + seen.err + json.dumps(result)
    assert PG_PASSWORD not in str(spark.sparkContext.getConf().getAll())  # the Spark configuration dump


def test_spark_writes_a_postgresql_table_over_jdbc_overwrite_replacing_it_and_append_adding_to_it(
    pg: tuple[str, str, Any], spark: Any, tmp_path: Path
) -> None:
    dsn, schema, conn = pg
    step = "SELECT id, concat('city-', id) AS city FROM range(3)"
    counts = []
    for mode in ("overwrite", "overwrite", "append"):
        target = [sql_output("s", f"dataos://pg:{schema}/cities", "table", mode)]
        (written,) = _pg_run(spark, tmp_path, dsn, _on_spark("to-pg", step, [], target))["outputs"]
        assert (written["rows"], written["saveMode"]) == (3, mode)
        counts.append(conn.execute(f'SELECT count(*) FROM "{schema}".cities').fetchone()[0])
    assert counts == [3, 3, 6]
    assert written["columns"] == [["id", "BIGINT"], ["city", "VARCHAR"]] and len(written["preview"]) == 6
    left = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)).fetchall()
    assert left == [("cities",)]  # no staging table left behind


def _pg_definition(client: Client) -> None:
    client.add_depot("pg", "postgres", dsn="host=127.0.0.1 port=5432 dbname=test user=postgres")
    source = [{"name": "t", "dataset": "dataos://pg:public/anything", "format": "table"}]
    client.define(_on_spark("from-pg", "SELECT * FROM t", source, []))


def test_submit_of_a_spark_pipeline_with_a_postgresql_depot_is_refused_naming_the_missing_jdbc_driver(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _pg_definition(client)
    (tmp_path / "other.jar").write_bytes(b"not a jar")
    monkeypatch.setenv(JARS_VARIABLE, str(tmp_path / "other.jar"))
    before = len(client.events())
    with pytest.raises(SparkUnavailable) as refused:
        client.submit("from-pg")
    said = str(refused.value)
    assert "lacks the PostgreSQL JDBC driver" in said and JARS_VARIABLE in said and "\n" not in said
    assert len(client.events()) == before


@pytest.mark.fleet(env={"JOBLEDGER_SPARK_MASTER": "local[2]", JARS_VARIABLE: ""})
def test_a_worker_without_the_jdbc_driver_fails_a_spark_run_with_a_postgresql_depot_in_one_line(
    client: Client, fleet: Procs
) -> None:
    if postgres_driver_missing() is not None:
        pytest.skip(f"the submit here needs the driver: {postgres_driver_missing()}")
    _pg_definition(client)
    run = client.wait(client.submit("from-pg"), timeout=120)
    message = client.run_detail(run["id"])["message"]
    assert run["status"] == "FAILED" and "\n" not in message, message
    assert "this worker lacks the PostgreSQL JDBC driver" in message


def test_a_postgresql_input_spark_cannot_read_fails_the_run_in_one_line_without_the_password(
    pg: tuple[str, str, Any], spark: Any, tmp_path: Path
) -> None:
    from workers.sql.datasets import PipelineError

    dsn, schema, _conn = pg
    source = [{"name": "t", "dataset": f"dataos://pg:{schema}/missing", "format": "table"}]
    with pytest.raises(PipelineError) as failed:
        _pg_run(spark, tmp_path, dsn, _on_spark("gone", "SELECT * FROM t", source, []))
    said = str(failed.value)
    assert said == f"dataos://pg:{schema}/missing: no table {schema}.missing"
    wrong = re.sub(r"port=\d+", "port=1", dsn)  # nothing listens there: said in one line
    with pytest.raises(PipelineError) as failed:
        _pg_run(spark, tmp_path, wrong, _on_spark("gone", "SELECT * FROM t", source, []))
    assert "PostgreSQL cannot be read" in str(failed.value) and "\n" not in str(failed.value)
    assert PG_PASSWORD not in str(failed.value)


# -- S3: over s3a with the Hadoop AWS connector, staged on a local master without it, else refused --------------

AWS_SECRET = "s3a-Secret-Key-7d19"  # moto takes any credentials: the point is where it must never show up


@pytest.fixture
def s3_lake(s3_endpoint: str, client: Client, procs: Procs, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    """(an S3 client, a fresh bucket) holding raw/city.csv; depot ``s3lake`` is its raw/ prefix on moto."""
    from tests.support.s3 import s3_client

    credentials = {"AWS_ACCESS_KEY_ID": "s3a-key-id", "AWS_SECRET_ACCESS_KEY": AWS_SECRET}
    for key, value in {**credentials, "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}.items():
        monkeypatch.setenv(key, value)
    procs.env.update(credentials, AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_CONFIG_FILE="/nonexistent")
    s3 = s3_client(s3_endpoint, "s3a-key-id", AWS_SECRET)
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.upload_file(str(PIPELINES / "depot" / "city.csv"), bucket, "raw/city.csv")
    client.add_depot("s3lake", "s3", bucket=bucket, prefix="raw", region="us-east-1", endpoint_url=s3_endpoint)
    return s3, bucket


def _to_s3(client: Client) -> None:
    client.define(_on_spark("to-s3", "SELECT 1 AS n", [], [sql_output("s", "dataos://s3lake:out/n", "parquet")]))


def test_submit_of_a_spark_pipeline_with_an_s3_depot_on_a_cluster_master_without_s3a_is_refused_in_one_line(
    s3_lake: tuple[Any, str], client: Client, procs: Procs, tmp_path: Path
) -> None:
    _to_s3(client)
    (tmp_path / "other.jar").write_bytes(b"not a jar")
    procs.env.update({"JOBLEDGER_SPARK_MASTER": "spark://127.0.0.1:7077", JARS_VARIABLE: str(tmp_path / "other.jar")})
    before = len(client.events())
    out = procs.cli("submit", "to-s3")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "lacks the Hadoop AWS connector" in out.stderr and "spark master" in out.stderr
    assert "hadoop-aws" in out.stderr and "AWS SDK bundle" in out.stderr and JARS_VARIABLE in out.stderr
    assert "127.0.0.1:7077" not in out.stderr  # a master URL may carry a token: only its kind is named
    assert len(client.events()) == before
    procs.env["JOBLEDGER_SPARK_MASTER"] = "local[2]"  # a local master stages S3 through the run folder
    assert procs.cli("submit", "to-s3").returncode == 0


@pytest.mark.fleet(env={"JOBLEDGER_SPARK_MASTER": "yarn", JARS_VARIABLE: ""})
def test_a_worker_on_a_cluster_master_without_s3a_fails_a_spark_run_with_an_s3_depot_in_one_line(
    s3_lake: tuple[Any, str], client: Client, fleet: Procs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBLEDGER_SPARK_MASTER", "local[2]")  # the submitter's master is local: it lets it by
    _to_s3(client)
    run = client.wait(client.submit("to-s3"), timeout=120)
    message = client.run_detail(run["id"])["message"]
    assert run["status"] == "FAILED" and "\n" not in message, message
    assert "this worker lacks the Hadoop AWS connector" in message and "yarn master" in message


def test_without_s3a_a_local_master_stages_s3_through_the_run_folder(
    s3_lake: tuple[Any, str], spark: Any, tmp_path: Path
) -> None:
    from workers.sql import spark_engine

    s3, bucket = s3_lake
    config = {"bucket": bucket, "prefix": "raw", "region": "us-east-1", "endpoint_url": s3.meta.endpoint_url}
    source = [{"name": "city", "dataset": "dataos://s3lake:none/city", "format": "csv"}]
    target = [sql_output("s", "dataos://s3lake:out/by_state", "parquet")]
    step = "SELECT state_code, count(*) AS n FROM city GROUP BY state_code"
    pipeline = normalize_definition(_on_spark("staged", step, source, target))["config"]["pipeline"]
    spec = {"pipeline": pipeline, "depots": {"s3lake": {"type": "s3", "config": config}}, "spark_s3": "stage",
            "run_dir": str(tmp_path), "result_path": str(tmp_path / "r.json")}  # fmt: skip
    (written,) = spark_engine.run_pipeline(spec, spark=spark)["outputs"]
    assert written["rows"] > 0 and (tmp_path / "stage" / "in" / "city").is_dir()  # copied in first
    assert s3.head_object(Bucket=bucket, Key="raw/out/by_state.parquet")["ContentLength"] > 0  # one PUT


def test_spark_reads_and_writes_s3_over_s3a_against_moto_without_showing_the_secret(
    s3_lake: tuple[Any, str], request: pytest.FixtureRequest, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from queue_core.services.spark import has_s3a_connector
    from workers.sql import spark_engine

    if not has_s3a_connector():  # this machine has none, and cannot fetch one: the s3a path is untested here
        pytest.skip(f"S3 over s3a needs hadoop-aws and its AWS SDK bundle named in {JARS_VARIABLE}")
    spark = request.getfixturevalue("spark")  # after the skip: no JVM started for nothing
    s3, bucket = s3_lake
    config = {"bucket": bucket, "prefix": "raw", "region": "us-east-1", "endpoint_url": s3.meta.endpoint_url}
    source = [{"name": "city", "dataset": "dataos://s3lake:none/city", "format": "csv"}]
    step = "SELECT state_code, count(*) AS n FROM city GROUP BY state_code"
    counts = []
    for k, mode in enumerate(("overwrite", "overwrite", "append")):
        target = [sql_output("s", "dataos://s3lake:out/by_state", "parquet", mode)]
        run_dir = tmp_path / f"run-{k}"
        run_dir.mkdir()
        pipeline = normalize_definition(_on_spark("s3a", step, source, target))["config"]["pipeline"]
        spec = {"pipeline": pipeline, "depots": {"s3lake": {"type": "s3", "config": config}}, "spark_s3": "s3a",
                "run_dir": str(run_dir), "result_path": str(run_dir / "r.json")}  # fmt: skip
        result = spark_engine.run_pipeline(spec, spark=spark)
        (written,) = result["outputs"]
        assert written["saveMode"] == mode and written["rows"] > 0 and written["preview"]
        assert not list(run_dir.rglob("*.csv")) and not list(run_dir.rglob("*.parquet"))  # nothing staged
        files = json.loads(s3.get_object(Bucket=bucket, Key="raw/out/by_state/_manifest.json")["Body"].read())
        counts.append(len(files["files"]))
    assert counts[0] == counts[1] and counts[2] == 2 * counts[0]  # overwrite replaced, append added
    seen = capfd.readouterr()
    assert AWS_SECRET not in seen.out + seen.err + json.dumps(result)
    assert AWS_SECRET not in str(spark.sparkContext.getConf().getAll())
