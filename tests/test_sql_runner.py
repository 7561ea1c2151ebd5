"""The SQL runner's lock: once it is set, no statement can widen DuckDB's access or reach another file."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from workers.sql_runner import lock_down


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
