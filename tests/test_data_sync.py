"""DATA_SYNC and the built-in library on real workers: a PostgreSQL table synced into a DuckDB warehouse whole,
then only its new rows (a pre-run between copying them to scratch and moving no watermark); ``library use``
making a scheduled workflow that runs a built-in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from queue_core import Client
from queue_core.specs.preruns import scratch_schema
from tests.support.postgres import own_schema
from tests.support.processes import Procs

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")
from psycopg import sql  # noqa: E402


@pytest.fixture
def pg() -> Iterator[tuple[str, str, Any]]:
    """(DSN, a schema of this test's own, an autocommit connection), or a skip saying why there is none."""
    with own_schema() as found:
        yield found


def _warehouse(path: Path, query: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(query).fetchall()


def _sync(name: str, schema: str, mode: str) -> dict[str, Any]:
    return {
        "name": name,
        "cluster": {"name": "default"},
        "config": {
            "type": "DATA_SYNC",
            "timeout": 2,
            "sync": {
                "source": {"dataset": f"dataos://pg:{schema}/orders"},
                "target": {"dataset": "dataos://wh:sales/orders"},
                "mode": mode,
                "watermark": "updated_at",
            },
        },
    }


def test_a_postgres_table_syncs_into_duckdb_whole_then_only_its_new_rows(
    pg: tuple[str, str, Any], client: Client, fleet: Procs, tmp_path: Path
):
    dsn, schema, conn = pg
    orders = sql.Identifier(schema, "orders")
    conn.execute(sql.SQL("CREATE TABLE {} (id int, amount numeric(10,2), updated_at timestamp)").format(orders))
    insert = sql.SQL("INSERT INTO {} VALUES (%s, %s, %s)").format(orders)
    for row in [(1, "9.50", "2024-03-01 10:00"), (2, "12.00", "2024-03-01 11:00"), (3, "1.25", "2024-03-02 09:30")]:
        conn.execute(insert, row)
    warehouse = tmp_path / "wh.duckdb"
    client.add_depot("pg", "postgres", dsn=dsn)
    client.add_depot("wh", "duckdb", path=str(warehouse))

    client.define(_sync("orders-full", schema, "full"))
    full = client.wait(client.submit("orders-full"), timeout=60)
    assert full["status"] == "SUCCEEDED", client.run_detail(full["id"])["message"]
    assert _warehouse(warehouse, "SELECT count(*), max(updated_at) FROM sales.orders")[0][0] == 3
    mark = {"column": "updated_at", "value": "2024-03-02 09:30:00", "type": "TIMESTAMP", "rows": 3}
    assert full["result"]["sync"] == mark

    for row in [(4, "3.00", "2024-03-03 08:00"), (5, "4.00", "2024-03-03 08:01")]:
        conn.execute(insert, row)
    conn.execute(sql.SQL("UPDATE {} SET amount = 99 WHERE id = 1").format(orders))  # older than the watermark: stays
    client.define(_sync("orders-new", schema, "incremental"))
    # A pre-run of it copies the new rows to scratch and moves no watermark: the real sync still copies them.
    client.apply_workflow({"name": "nightly-sync", "tasks": {"sync": {"definition": "orders-new"}}})
    prerun = client.wait_workflow_run(client.prerun_workflow("nightly-sync"), timeout=60)
    assert prerun["status"] == "SUCCEEDED", prerun
    assert _warehouse(warehouse, f"SELECT count(*) FROM {scratch_schema(prerun['id'])}.sales__orders") == [(2,)]
    assert _warehouse(warehouse, "SELECT count(*) FROM sales.orders") == [(3,)]
    new = client.wait(client.submit("orders-new"), timeout=60)
    assert new["status"] == "SUCCEEDED", client.run_detail(new["id"])["message"]
    assert new["result"]["sync"]["rows"] == 2 and new["result"]["sync"]["value"] == "2024-03-03 08:01:00"
    ids = _warehouse(warehouse, "SELECT id, amount FROM sales.orders ORDER BY id")
    assert [(i, float(a)) for i, a in ids] == [(1, 9.5), (2, 12.0), (3, 1.25), (4, 3.0), (5, 4.0)]

    again = client.wait(client.submit("orders-new"), timeout=60)  # nothing new: no row moves, the watermark stays
    assert again["status"] == "SUCCEEDED" and again["result"]["sync"]["rows"] == 0
    assert _warehouse(warehouse, "SELECT count(*) FROM sales.orders") == [(5,)]

    marks = [r.event for r in client.events(type="SyncWatermarkRecorded")]
    assert [(m.rows, m.value, m.mode, m.run) for m in marks] == [
        (3, "2024-03-02 09:30:00", "full", full["id"]),
        (2, "2024-03-03 08:01:00", "incremental", new["id"]),
        (0, "2024-03-03 08:01:00", "incremental", again["id"]),
    ]
    writes = client.lineage("dataos://wh:sales/orders")["writes"]
    assert [(w["run"], w["rows"], w["save_mode"]) for w in writes] == [
        (full["id"], 3, "overwrite"), (new["id"], 2, "append"), (again["id"], 0, "append")]  # fmt: skip
    assert writes[0]["inputs"] == [f"dataos://pg:{schema}/orders"]
    assert len({w["fingerprint"] for w in writes}) == 1  # one schema throughout


def test_library_use_makes_a_scheduled_workflow_that_runs_the_builtin(client: Client, fleet: Procs, tmp_path: Path):
    lake = tmp_path / "lake"
    lake.mkdir()
    (lake / "events.csv").write_text("id,state,at\n1,new,1\n1,done,2\n2,new,1\n")
    client.add_depot("files", "local", path=str(lake))
    length = client.store.length()
    refused = fleet.cli("library", "use", "deduplicate", "--workflow", "dedup",
                        "--param", "input=dataos://files:none/events", "--param", "key=id")  # fmt: skip
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "params.output: is required" in refused.stderr
    assert client.store.length() == length  # nothing appended

    used = fleet.cli("library", "use", "deduplicate", "--workflow", "dedup", "--cron", "0 3 * * *", "--json",
                     "--param", "input=dataos://files:none/events", "--param", "inputFormat=csv",
                     "--param", "output=dataos://files:none/latest", "--param", "outputFormat=csv",
                     "--param", "key=id", "--param", "latestBy=at")  # fmt: skip
    assert used.returncode == 0, used.stderr
    made = json.loads(used.stdout)
    assert made["builtin"] == "deduplicate@1" and made["schedule"]["cron"] == "0 3 * * *"
    assert client.get_schedule("dedup")["target_kind"] == "workflow"
    run = client.wait_workflow_run(client.run_workflow("dedup"), timeout=60)
    assert run["status"] == "SUCCEEDED", run
    lines = (lake / "latest.csv").read_text().splitlines()
    assert lines[0] == "id,state,at" and sorted(lines[1:]) == ["1,done,2", "2,new,1"]
