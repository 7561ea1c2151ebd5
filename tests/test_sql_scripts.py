""".sql files as pipelines: statements run in order in one session, locked down like steps, outputs written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from queue_core import Client, InvalidInput
from tests.support.jobs import sql_definition, sql_output
from tests.support.paths import EXAMPLES
from tests.support.processes import Procs

PIPELINES = EXAMPLES / "pipelines"

SCRIPT = """-- the biggest cities of each state, and a count
CREATE TABLE big AS SELECT * FROM city WHERE population > 5000;
INSERT INTO big SELECT * FROM city WHERE city_name = 'Springfield' AND population <= 5000;
CREATE VIEW per_state AS
    SELECT state_code, count(*) AS n FROM big GROUP BY ALL;
DELETE FROM big WHERE state_code = 'CA';

SELECT count(*) AS rows, count(DISTINCT state_code) AS states FROM big  -- the run's result
"""


def script_job(name: str, location: str, outputs: list[dict[str, Any]], source: dict[str, Any] | None = None):
    inputs = [{"name": "city", "dataset": "dataos://files:none/city", "format": "csv"}]
    source = source or {"type": "WORKSPACE", "sourceDef": {"path": "sql"}}
    return sql_definition(name, None, inputs, outputs, config={"source": source, "sourceLocation": location})


def write(workspace: Path, name: str, text: str) -> None:
    (workspace / "sql").mkdir(exist_ok=True)
    (workspace / "sql" / name).write_text(text)


def test_a_sql_file_runs_its_statements_in_order_and_the_last_one_is_the_result(
    lake: Path, tmp_path: Path, workspace: Path, client: Client, fleet: Procs
):
    write(workspace, "report.sql", SCRIPT)
    outputs = [
        sql_output("big", "dataos://wh:dev/big", "table"),
        sql_output("per_state", "dataos://files:out/per_state", "csv"),
    ]
    client.define(script_job("report", "report.sql", outputs))
    run = client.wait(client.submit("report"), timeout=60)
    assert run["status"] == "SUCCEEDED", client.run_detail(run["id"])["message"]
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        (expected,) = con.execute("SELECT count(*) FROM dev.big").fetchall()
        assert con.execute("SELECT count(*) FROM dev.big WHERE state_code = 'CA'").fetchall() == [(0,)]
    query = run["result"]["query"]
    assert query["statement"] == 5 and [c[0] for c in query["columns"]] == ["rows", "states"]
    assert query["preview"][0][0] == expected[0] == run["result"]["outputs"][0]["rows"]
    states = duckdb.sql(f"SELECT sum(n) FROM '{lake / 'out' / 'per_state.csv'}'").fetchall()
    assert states == [expected]  # the view saw the table as the statements before it left it
    assert "statement 5 (first 1 rows)" in fleet.cli("status", run["id"]).stdout


@pytest.mark.parametrize(
    ("statement", "said"),
    [
        ("SET enable_external_access=true", "statement 2 (line 3): SET is not allowed"),
        ("ATTACH '/tmp/other.db' AS o", "statement 2 (line 3): ATTACH is not allowed"),
        ("INSTALL httpfs", "statement 2 (line 3): LOAD is not allowed"),
        ("LOAD httpfs", "statement 2 (line 3): LOAD is not allowed"),
        ("COPY big TO '/tmp/jobledger-script-escape.csv'", "statement 2 (line 3): COPY is not allowed"),
        ("PRAGMA enable_profiling", "statement 2 (line 3): PRAGMA is not allowed"),
        ("CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')", "statement 2 (line 3): CREATE is not allowed"),
        ("BEGIN TRANSACTION", "statement 2 (line 3): TRANSACTION is not allowed"),
        ("SELECT * FROM read_csv('/etc/passwd')", "statement 2 (line 3): Permission Error"),
        ("CREATE TABLE wh_wh.dev.planted AS SELECT 1 AS x", "statement 2 (line 3): Invalid Input Error"),
    ],
)
def test_a_sql_file_is_locked_down_like_steps(
    lake: Path, tmp_path: Path, workspace: Path, client: Client, fleet: Procs, statement: str, said: str
):
    with duckdb.connect(str(tmp_path / "wh.duckdb")) as con:  # an input warehouse the script may only read
        con.execute("CREATE SCHEMA dev; CREATE TABLE dev.seed AS SELECT 1 AS x")
    write(workspace, "evil.sql", f"CREATE TABLE big AS SELECT * FROM city;\n\n{statement};\nSELECT 1;\n")
    job = script_job("evil", "evil.sql", [sql_output("big", "dataos://files:out/big", "csv")])
    job["config"]["pipeline"]["inputs"].append({"name": "seed", "dataset": "dataos://wh:dev/seed", "format": "table"})
    client.define(job)
    run = client.wait(client.submit("evil"), timeout=60)
    assert (run["status"], run["reason"]) == ("FAILED", "NonZeroExitCode")
    assert said in client.run_detail(run["id"])["message"]
    assert not list((lake / "out").glob("*"))
    assert not Path("/tmp/jobledger-script-escape.csv").exists()
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        assert con.execute("SELECT table_name FROM duckdb_tables()").fetchall() == [("seed",)]


def test_a_sql_file_comes_from_any_source_and_an_output_must_name_what_it_created(
    lake: Path, tmp_path: Path, client: Client, fleet: Procs
):
    file = tmp_path / "count.sql"
    file.write_text("CREATE VIEW counted AS SELECT state_code, count(*) AS n FROM city GROUP BY ALL;\n")
    client.add_resource("count-sql", file)
    resource = {"type": "RESOURCE", "sourceDef": {"name": "count-sql"}}
    client.define(
        script_job("counted", "count.sql", [sql_output("counted", "dataos://files:out/c", "parquet")], resource)
    )
    run = client.wait(client.submit("counted"), timeout=60)
    assert run["status"] == "SUCCEEDED", client.run_detail(run["id"])["message"]
    assert run["result"]["outputs"][0]["rows"] == 5
    assert run["result"]["query"]["columns"] == [["Count", "BIGINT"]]  # what CREATE VIEW returns
    client.define(
        script_job("counted", "count.sql", [sql_output("missing", "dataos://files:out/m", "parquet")], resource)
    )
    failed = client.wait(client.submit("counted"), timeout=60)
    assert (failed["status"], failed["reason"]) == ("FAILED", "NonZeroExitCode")
    assert "output missing: the script created no view or table missing" in client.run_detail(failed["id"])["message"]


def test_a_sql_file_pipeline_with_steps_or_without_a_source_is_refused_at_define_time(lake: Path, client: Client):
    with_steps = script_job("s", "a.sql", [])
    with_steps["config"]["pipeline"]["steps"] = [{"sequence": [{"name": "x", "sql": "SELECT 1"}]}]
    with pytest.raises(InvalidInput, match=r"a \.sql file.s statements are its steps"):
        client.define(with_steps)
    no_source = script_job("s", "a.sql", [])
    del no_source["config"]["source"]
    with pytest.raises(InvalidInput, match=r"config\.source: is required to fetch the \.sql file from"):
        client.define(no_source)
    unknown = script_job("s", "a.sql", [sql_output("x", "dataos://nowhere:a/b", "csv")])
    with pytest.raises(InvalidInput, match="no depot named 'nowhere'"):
        client.define(unknown)
