"""Row 36: SQL and identifier injection in SQL jobs.

A dataset name that is not an identifier (``x"; DROP TABLE t; --``) is refused at define
(``invalid_dataset_name``). A step must be one ``SELECT``: ``SET``, ``ATTACH``, ``INSTALL``, ``LOAD``,
``COPY`` and stacked statements fail the attempt naming the step. Beneath that, before any user
statement, DuckDB's file access is limited to the declared inputs, outputs and the run's folder and its
configuration is locked, so whatever reaches DuckDB gets a permission or configuration error, and the
lock itself cannot be lifted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from queue_core import Client, InvalidInput
from tests.support.faults import assert_log_holds
from tests.support.jobs import sql_definition, sql_output
from tests.support.processes import Procs
from workers.sql.runner import lock_down

CITY = "name,population\nParis,2100000\nLyon,520000\n"


def _pipeline(name: str, sql: str, output: str) -> dict[str, Any]:
    city = [{"name": "city", "dataset": "dataos://files:none/city", "format": "csv"}]
    return sql_definition(name, [("evil", sql)], city, [sql_output("evil", output, "csv")])


@pytest.fixture
def lake(tmp_path: Path, client: Client) -> Path:
    folder = tmp_path / "lake"
    folder.mkdir()
    (folder / "city.csv").write_text(CITY)
    client.add_depot("files", "local", path=str(folder))
    return folder


def test_a_dataset_name_that_is_not_an_identifier_is_refused_at_define(lake: Path, client: Client):
    before = client.store.last_position()
    with pytest.raises(InvalidInput, match="invalid_dataset_name"):
        client.define(_pipeline("bad", "SELECT * FROM city", 'dataos://files:none/x"; DROP TABLE t; --'))
    assert client.store.last_position() == before


def test_sql_cannot_reach_beyond_its_declared_datasets(
    lake: Path, client: Client, procs: Procs, redis_url: str, tmp_path: Path
):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("secret\nyes\n")
    statements = [
        (f"SELECT * FROM read_csv('{outside}/secret.csv')", "Permission Error"),
        ("SELECT * FROM read_csv('../../../etc/hostname')", "Permission Error"),
        ("SET enable_external_access=true", "must be one SELECT query, not SET"),
        (f"ATTACH '{outside}/other.db'", "must be one SELECT query, not ATTACH"),
        ("INSTALL httpfs", "must be one SELECT query"),
        ("LOAD httpfs", "must be one SELECT query"),
        (f"COPY (SELECT 1) TO '{outside}/escape.csv'", "must be one SELECT query, not COPY"),
        (f"SELECT 1; COPY (SELECT 1) TO '{outside}/escape.csv'", "not SELECT, COPY"),
    ]
    procs.fleet(redis_url)
    runs = []
    for i, (sql, _) in enumerate(statements):
        client.define(_pipeline(f"escape-{i}", sql, f"dataos://files:out/evil{i}"))
        runs.append(client.submit(f"escape-{i}"))
    for run_id, (sql, said) in zip(runs, statements, strict=True):
        run = client.wait(run_id, timeout=60)
        assert (run["status"], run["reason"]) == ("FAILED", "NonZeroExitCode"), sql
        message = client.run_detail(run_id)["message"]
        assert "step evil" in message and said in message, (sql, message)
    assert sorted(p.name for p in outside.iterdir()) == ["secret.csv"]
    assert not (lake / "out").exists() or list((lake / "out").iterdir()) == []
    assert_log_holds(client, runs)


@pytest.mark.parametrize(
    ("statement", "said"),
    [
        ("SET enable_external_access=true", "configuration has been locked"),
        ("SET allowed_directories=['/']", "configuration has been locked"),
        ("RESET lock_configuration", "configuration has been locked"),
        ("ATTACH '{outside}/other.db'", "Permission Error"),
        ("INSTALL httpfs", "Permission Error"),
        ("LOAD httpfs", "Permission Error"),
        ("COPY (SELECT 1) TO '{outside}/escape.csv'", "Permission Error"),
        ("SELECT * FROM read_csv('/etc/passwd')", "Permission Error"),
        ("SELECT * FROM read_text('{run}/../secret.txt')", "Permission Error"),
    ],
)
def test_a_locked_session_refuses_each_way_out(tmp_path: Path, statement: str, said: str):
    run, outside = tmp_path / "run", tmp_path / "outside"
    run.mkdir()
    outside.mkdir()
    (tmp_path / "secret.txt").write_text("no")
    con = duckdb.connect(":memory:")
    lock_down(con, [str(run)], [])
    with pytest.raises(duckdb.Error, match=said):
        con.execute(statement.format(run=run, outside=outside))
    assert list(outside.iterdir()) == []


def test_a_locked_session_still_reads_and_writes_its_own_run_folder(tmp_path: Path):
    con = duckdb.connect(":memory:")
    lock_down(con, [str(tmp_path)], [])
    con.execute(f"COPY (SELECT 42 AS x) TO '{tmp_path}/mine.csv' (HEADER true)")
    assert con.execute(f"SELECT x FROM read_csv('{tmp_path}/mine.csv')").fetchall() == [(42,)]
