"""PostgreSQL depots against a real PostgreSQL server of the tests' own: types, save modes, atomic overwrite,
the password, a pre-run's scratch schema."""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from queue_core import Client, InvalidInput
from queue_core.services.depots import get_depot
from queue_core.services.prerun_scratch import remove_scratch
from queue_core.specs.preruns import scratch_schema
from tests.support.jobs import sql_definition, sql_output
from tests.support.postgres import own_schema
from tests.support.processes import Procs, eventually
from tests.support.scratch import run_as

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")
from psycopg import sql  # noqa: E402

PASSWORD = "pg-Secret-7f3a9c"  # trust auth ignores it: the point is where it must never show up


@pytest.fixture
def pg() -> Iterator[tuple[str, str, Any]]:
    """(DSN, a schema of this test's own, an autocommit connection); the schema is dropped afterwards."""
    with own_schema() as made:
        yield made


def rows(conn: Any, schema: str, table: str) -> list[tuple[Any, ...]]:
    query = sql.SQL("SELECT * FROM {}.{} ORDER BY 1").format(sql.Identifier(schema), sql.Identifier(table))
    return conn.execute(query).fetchall()


def tables(conn: Any, schema: str) -> list[str]:
    found = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema,)).fetchall()
    return [name for (name,) in found]


def job(name: str, sql_text: str, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    return sql_definition(name, [("s", sql_text)], inputs, outputs, timeout=2)


def out(dataset: str, mode: str) -> dict[str, Any]:
    return sql_output("s", dataset, "table", mode)


def test_a_postgres_table_round_trips_its_types_through_duckdb(pg: tuple[str, str, Any], client: Client, fleet: Procs):
    dsn, schema, conn = pg
    typed = sql.Identifier(schema, "Typed")  # mixed case: only a quoted identifier keeps it
    conn.execute(
        sql.SQL(
            "CREATE TABLE {} (id int, ok bool, price numeric(10,2), ratio numeric, note text, day date, "
            "at timestamp, zoned timestamptz, raw bytea, span interval, uid uuid, big bigint, f float8)"
        ).format(typed)
    )
    conn.execute(
        sql.SQL(
            "INSERT INTO {} VALUES (1, true, 3.25, 1.5, %s, '2024-02-29', '2024-01-01 12:00:01.5', "
            "'2024-01-01 12:00:00+02', '\\x0001ff', '1 day 02:03:04.5', '8a46ca2a-15c2-4d8e-9043-79f2eca3129a', "
            "9007199254740993, 0.1), (2, NULL, NULL, NULL, '', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
        ).format(typed),
        ('a,"b"\nc',),
    )
    client.add_depot("pg", "postgres", dsn=dsn)
    inputs = [{"name": "t", "dataset": f"dataos://pg:{schema}/Typed", "format": "table"}]
    client.define(job("copy", "SELECT * FROM t", inputs, [out(f"dataos://pg:{schema}/Copied", "overwrite")]))
    run = client.wait(client.submit("copy"), timeout=60)
    assert run["status"] == "SUCCEEDED", client.run_detail(run["id"])["message"]
    assert rows(conn, schema, "Copied") == rows(conn, schema, "Typed")
    copied = sql.SQL("SELECT note IS NULL, note = '' FROM {} WHERE id = 2").format(sql.Identifier(schema, "Copied"))
    assert conn.execute(copied).fetchall() == [(False, True)]  # an empty string stays an empty string, not NULL
    written = run["result"]["outputs"][0]
    assert written["rows"] == 2
    assert dict(written["columns"]) == {
        "id": "INTEGER", "ok": "BOOLEAN", "price": "DECIMAL(10,2)", "ratio": "DOUBLE", "note": "VARCHAR",
        "day": "DATE", "at": "TIMESTAMP", "zoned": "TIMESTAMP WITH TIME ZONE", "raw": "BLOB", "span": "INTERVAL",
        "uid": "UUID", "big": "BIGINT", "f": "DOUBLE",
    }  # fmt: skip
    types = conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s "
        "AND table_name = 'Copied' AND column_name IN ('price', 'zoned', 'raw')",
        (schema,),
    ).fetchall()
    assert sorted(types) == [("price", "numeric"), ("raw", "bytea"), ("zoned", "timestamp with time zone")]


def test_each_save_mode_means_what_it_means_in_spark(pg: tuple[str, str, Any], client: Client, fleet: Procs):
    dsn, schema, conn = pg
    client.add_depot("pg", "postgres", dsn=dsn)
    target = f"dataos://pg:{schema}/ids"

    def run_with(mode: str, value: int) -> dict[str, Any]:
        client.define(job("ids", f"SELECT {value} AS id, 'v{value}' AS label", [], [out(target, mode)]))
        return client.wait(client.submit("ids"), timeout=60)

    assert run_with("errorIfExists", 1)["status"] == "SUCCEEDED"
    refused = run_with("errorIfExists", 2)
    assert (refused["status"], refused["reason"]) == ("FAILED", "NonZeroExitCode")
    assert "exists and saveMode is errorIfExists" in client.run_detail(refused["id"])["message"]
    ignored = run_with("ignore", 3)
    assert ignored["status"] == "SUCCEEDED" and ignored["result"]["outputs"][0]["written"] is False
    appended = run_with("append", 4)
    assert appended["status"] == "SUCCEEDED" and appended["result"]["outputs"][0]["rows"] == 1
    assert rows(conn, schema, "ids") == [(1, "v1"), (4, "v4")]
    assert run_with("overwrite", 5)["status"] == "SUCCEEDED"
    assert rows(conn, schema, "ids") == [(5, "v5")]
    assert tables(conn, schema) == ["ids"]  # no staging table left behind


def test_kill_9_of_the_worker_mid_overwrite_leaves_the_previous_table_whole(
    pg: tuple[str, str, Any], client: Client, procs: Procs, redis_url: str
):
    dsn, schema, conn = pg
    (worker,) = procs.fleet(redis_url).workers
    client.add_depot("pg", "postgres", dsn=dsn)
    target = [out(f"dataos://pg:{schema}/big", "overwrite")]
    client.define(job("big", "SELECT range AS i FROM range(3)", [], target))
    assert client.wait(client.submit("big"), timeout=60)["status"] == "SUCCEEDED"
    client.define(job("big", "SELECT range AS i, md5(range::VARCHAR) AS h FROM range(6000000)", [], target))
    run_id = client.submit("big")

    def copying() -> bool:
        found = conn.execute(
            "SELECT p.tuples_processed FROM pg_stat_progress_copy p JOIN pg_stat_activity a USING (pid) "
            "WHERE a.application_name = %s",
            (f"jobledger {run_id}",),
        ).fetchall()
        return bool(found and found[0][0] > 0)

    eventually(copying, timeout=120, interval=0.02, what="the COPY into the staging table")
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    assert rows(conn, schema, "big") == [(0,), (1,), (2,)]

    def backend_gone() -> bool:
        query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        return conn.execute(query, (f"jobledger {run_id}",)).fetchone()[0] == 0

    eventually(backend_gone, what="the server to roll the killed run's transaction back")
    assert tables(conn, schema) == ["big"] and rows(conn, schema, "big") == [(0,), (1,), (2,)]


def test_the_password_is_a_secret_reference_and_shows_up_nowhere(
    pg: tuple[str, str, Any], client: Client, procs: Procs, redis_url: str, settings: Any
):
    dsn, schema, conn = pg
    procs.fleet(redis_url)
    # A table that happens to hold the value: the result's preview of it must not carry it into the log.
    conn.execute(sql.SQL("CREATE TABLE {} AS SELECT 1 AS id, %s AS echoed").format(sql.Identifier(schema, "src")),
                 (PASSWORD,))  # fmt: skip
    inline = procs.cli("depot", "add", "leaky", "--type", "postgres", "--dsn", f"{dsn} password={PASSWORD}")
    assert inline.returncode == 2 and "must not hold a password" in inline.stderr
    assert PASSWORD not in inline.stderr + inline.stdout
    uri = procs.cli("depot", "add", "leaky", "--type", "postgres", "--dsn", f"postgresql://u:{PASSWORD}@h/db")
    assert uri.returncode == 2 and PASSWORD not in uri.stderr + uri.stdout
    added = procs.cli("depot", "add", "pg", "--type", "postgres", "--dsn", dsn, "--password-secret", "pgpass")
    assert added.returncode == 0, added.stderr
    assert "password: secret pgpass" in procs.cli("depot", "list").stdout
    source = [{"name": "src", "dataset": f"dataos://pg:{schema}/src", "format": "table"}]
    client.define(job("pw", "SELECT * FROM src", source, [out(f"dataos://pg:{schema}/pw", "overwrite")]))
    missing = client.wait(client.submit("pw"), timeout=60)
    assert (missing["status"], missing["reason"]) == ("FAILED", "SourceUnavailable")
    assert "secret 'pgpass' is not set" in client.run_detail(missing["id"])["message"]
    assert procs.cli("secret", "set", "pgpass", input=PASSWORD + "\n").returncode == 0
    run = client.wait(client.submit("pw"), timeout=60)
    assert run["status"] == "SUCCEEDED", client.run_detail(run["id"])["message"]
    assert run["result"]["outputs"][0]["preview"] == [[1, "***"]]
    shown = procs.cli("status", run["id"], "--json").stdout + procs.cli("logs", run["id"]).stdout
    events = procs.cli("events", "--json").stdout
    assert PASSWORD not in shown + events
    assert all(PASSWORD not in line.line for r in (missing, run) for line in client.logs(r["id"]))
    assert PASSWORD not in json.dumps(client.list_depots())


def test_a_postgres_dataset_is_a_table_and_the_depot_is_checked_at_define_time(
    pg: tuple[str, str, Any], client: Client
):
    dsn, schema, _ = pg
    client.add_depot("pg", "postgres", dsn=dsn)
    bad = job("bad", "SELECT 1 AS x", [], [{"name": "s", "dataset": f"dataos://pg:{schema}/x", "format": "csv"}])
    with pytest.raises(InvalidInput, match="a postgres depot holds table, bigquery, not csv"):
        client.define(bad)
    for options, said in [
        ({"dsn": "garbage ==="}, "is not a PostgreSQL DSN"),
        ({"dsn": dsn, "path": "/x"}, "does not apply to a postgres depot"),
        ({"dsn": dsn, "password_secret": "bad name"}, "not a valid name"),
    ]:
        with pytest.raises(InvalidInput, match=said):
            client.add_depot("other", "postgres", **options)


def test_a_prerun_writes_a_postgres_output_in_its_scratch_schema_which_removal_drops(
    pg: tuple[str, str, Any], client: Client, tmp_path: Path
):
    dsn, schema, conn = pg
    conn.execute(sql.SQL("CREATE TABLE {} AS SELECT 1 AS id UNION ALL SELECT 2").format(sql.Identifier(schema, "src")))
    client.add_depot("pg", "postgres", dsn=dsn)
    pipeline = {
        "inputs": [{"name": "src", "dataset": f"dataos://pg:{schema}/src", "format": "table"}],
        "steps": [{"sequence": [{"name": "s", "sql": "SELECT id * 10 AS id FROM src"}]}],
        "outputs": [out(f"dataos://pg:{schema}/dst", "overwrite")],
    }
    assert run_as(client, pipeline, tmp_path / "real")["outputs"][0]["rows"] == 2
    conn.execute(sql.SQL("INSERT INTO {} VALUES (3)").format(sql.Identifier(schema, "src")))
    prerun = str(uuid.uuid4())
    written = run_as(client, pipeline, tmp_path / "prerun", prerun)["outputs"][0]
    assert (written["rows"], written["scratch"]) == (3, f"pg: {scratch_schema(prerun)}.{schema}__dst")
    assert rows(conn, scratch_schema(prerun), f"{schema}__dst") == [(10,), (20,), (30,)]
    assert rows(conn, schema, "dst") == [(10,), (20,)]  # the real table as it was
    remove_scratch(get_depot(client.store, "pg"), prerun, lambda secret: None)
    found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (scratch_schema(prerun),)).fetchall()
    assert found == [] and rows(conn, schema, "dst") == [(10,), (20,)]
