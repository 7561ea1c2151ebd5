"""Each built-in of the library on a small real dataset, run by the SQL runner itself (no store, no worker),
against its expected output; and their parameters checked at define time, one line naming the bad one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from queue_core.errors import InvalidInput, JobledgerError, NotFound
from queue_core.specs.builtins import job_pipeline, library, params_from_text
from queue_core.specs.definitions import normalize_definition
from queue_core.specs.enos_workflows import enos_to_native
from queue_core.specs.workflows import normalize_workflow
from workers.sql.runner import run_pipeline

SALES = """\
id,region,product,q1,q2,updated
1,north,apples,10,12,2024-01-01
2,north,pears,5,,2024-01-02
3,south,apples,7,9,2024-01-03
1,north,apples,11,13,2024-02-01
"""


def _builtin(name: str, **params: Any) -> dict[str, Any]:
    return normalize_definition({"name": "b", "config": {"type": "BUILTIN", "builtin": name, "params": params}})


def _run(tmp_path: Path, name: str, **params: Any) -> list[tuple[Any, ...]]:
    """Run the built-in on ``sales.csv`` in a local depot ``files``; the rows of what it wrote, sorted."""
    lake = tmp_path / "lake"
    lake.mkdir(exist_ok=True)
    (lake / "sales.csv").write_text(SALES)
    job = _builtin(name, input="dataos://files:none/sales", output="dataos://files:none/out", **params)["config"]
    depots = {"files": {"name": "files", "type": "local", "config": {"path": str(lake)}}}
    pipeline = job_pipeline(job, {"files": "local"})
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    result = run_pipeline({"pipeline": pipeline, "depots": depots, "run_dir": str(run_dir)})
    written = result["outputs"][0]
    assert written["written"] and written["dataset"] == "dataos://files:none/out"
    out = lake / f"out.{written['format']}"
    reader = "read_csv" if written["format"] == "csv" else "read_parquet"
    return sorted(duckdb.sql(f"SELECT * FROM {reader}('{out}')").fetchall(), key=repr)


def test_columns_to_rows_turns_each_listed_column_into_a_row_keeping_nulls(tmp_path: Path):
    rows = _run(tmp_path, "columns-to-rows", inputFormat="csv", columns=["q1", "q2"], nameColumn="quarter")
    assert len(rows) == 8
    assert (2, "north", "pears", "2024-01-02", "q2", None) in [(*r[:3], str(r[3]), *r[4:]) for r in rows]
    assert {(r[0], r[4], r[5]) for r in rows if r[0] == 3} == {(3, "q1", 7), (3, "q2", 9)}


def test_rows_to_columns_makes_a_column_per_listed_value(tmp_path: Path):
    rows = _run(tmp_path, "rows-to-columns", inputFormat="csv", names="product", columns=["apples", "pears"],
                values="q1", keys=["region"], aggregate="sum")  # fmt: skip
    assert rows == [("north", 21, 5), ("south", 7, None)]


def test_csv_to_parquet_keeps_every_row_with_detected_types(tmp_path: Path):
    rows = _run(tmp_path, "csv-to-parquet")
    assert len(rows) == 4 and rows[0][:3] == (1, "north", "apples") and isinstance(rows[0][3], int)
    assert (tmp_path / "lake" / "out.parquet").read_bytes()[:4] == b"PAR1"


def test_deduplicate_keeps_the_latest_row_of_each_key(tmp_path: Path):
    rows = _run(tmp_path, "deduplicate", inputFormat="csv", outputFormat="csv", key=["id"], latestBy="updated")
    assert [(r[0], r[3]) for r in rows] == [(1, 11), (2, 5), (3, 7)]


def test_profile_writes_one_row_per_column_with_counts_and_extremes(tmp_path: Path):
    rows = _run(tmp_path, "profile", inputFormat="csv")
    by_column = {r[1]: r for r in rows}
    assert [r[1] for r in sorted(rows)] == ["id", "region", "product", "q1", "q2", "updated"]
    # position, column, type, rows, nulls, distinct, min, max
    assert by_column["id"][2:] == ("BIGINT", 4, 0, 3, "1", "3")
    assert by_column["q2"][3:] == (4, 1, 3, "9", "13")
    assert by_column["region"][3:] == (4, 0, 2, "north", "south")
    assert by_column["updated"][2] == "DATE" and by_column["updated"][6:] == ("2024-01-01", "2024-02-01")


def test_the_library_lists_every_builtin_with_documented_parameters():
    names = {b["name"] for b in library()}
    assert names >= {"columns-to-rows", "rows-to-columns", "depot-sync", "csv-to-parquet", "deduplicate", "profile"}
    for builtin in library():
        assert builtin["summary"] and builtin["version"] >= 1
        assert all(p["doc"] and p["kind"] for p in builtin["params"])


def test_depot_sync_is_the_data_sync_task_as_a_script():
    job = _builtin("depot-sync@1", source="dataos://pg:public/orders", target="dataos://wh:main/orders",
                   mode="incremental", watermark="id")["config"]  # fmt: skip
    pipeline = job_pipeline(job, {"pg": "postgres", "wh": "duckdb"}, {"value": "7", "type": "INTEGER"})
    assert pipeline["steps"][0]["sql"] == 'SELECT * FROM "source" WHERE "id" > CAST(\'7\' AS INTEGER)'
    assert pipeline["inputs"][0]["after"] == {"column": "id", "value": "7"}
    assert [x["format"] for x in (*pipeline["inputs"], *pipeline["outputs"])] == ["table", "table"]
    assert pipeline["outputs"][0]["saveMode"] == "append"


DATASETS = {"input": "dataos://f:none/a", "output": "dataos://f:none/b"}
BAD = [
    ("deduplicate", {**DATASETS, "key": ["id"]}, "config.params.latestBy: is required"),
    ("deduplicate", {**DATASETS, "key": "id", "latestBy": "t"}, "config.params.key: must be a non-empty list"),
    ("deduplicate", {**DATASETS, "key": ["i d"], "latestBy": "t"}, "config.params.key[0]: 'i d' is not a valid"),
    ("profile", {**DATASETS, "colour": "red"}, "config.params: profile@1 has no parameter 'colour'"),
    ("profile", {"input": "s3://x/y", "output": DATASETS["output"]}, "config.params.input: is not a dataset address"),
    ("profile", {**DATASETS, "saveMode": "merge"}, "config.params.saveMode: unknown save mode 'merge'"),
    ("rows-to-columns", {**DATASETS, "names": "p", "values": "v", "columns": [True]}, "config.params.columns[0]"),
    ("rows-to-columns", {**DATASETS, "names": "p", "values": "v", "columns": ["a"], "aggregate": "median"},
     "config.params.aggregate: 'median' is not one of"),
    ("depot-sync", {"source": "dataos://a:s/t", "target": "dataos://b:s/t", "mode": "incremental"},
     "config.params.watermark: is required for an incremental sync"),
    ("nope", {}, "config.builtin: no built-in named 'nope'"),
    ("profile@9", {}, "config.builtin: profile has no version 9; it has @1"),
    ("Profile", {}, "config.builtin: must be a built-in's name"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "params", "message"), BAD, ids=[f"{m.split(':')[0]}-{i}" for i, (*_, m) in enumerate(BAD)]
)
def test_a_bad_parameter_is_refused_in_one_line_naming_it(name: str, params: dict[str, Any], message: str):
    with pytest.raises((InvalidInput, NotFound)) as caught:
        _builtin(name, **params)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_data_sync_definition_is_checked_like_the_builtin():
    with pytest.raises(InvalidInput, match=r"^config\.sync\.mode: unknown sync mode 'delta'"):
        ends = {"source": {"dataset": "dataos://a:s/t"}, "target": {"dataset": "dataos://b:s/t"}}
        normalize_definition({"name": "s", "config": {"type": "DATA_SYNC", "sync": {**ends, "mode": "delta"}}})
    with pytest.raises(InvalidInput, match=r"^config\.sync: applies to DATA_SYNC jobs only"):
        normalize_definition({"name": "s", "config": {"type": "SHELL", "sourceLocation": "a.sh", "sync": {}}})
    with pytest.raises(InvalidInput, match=r"^config\.source: does not apply to BUILTIN jobs"):
        normalize_definition({"name": "s", "config": {"type": "BUILTIN", "builtin": "profile",
                                                      "source": {"type": "WORKSPACE"}}})  # fmt: skip


def test_cli_text_becomes_lists_where_the_parameter_is_one():
    assert params_from_text("deduplicate", {"key": "id, region", "latestBy": "updated"}) == {
        "key": ["id", "region"], "latestBy": "updated"}  # fmt: skip


def test_enos_tasks_run_builtins_and_syncs():
    enos = {
        "name": "w",
        "tasks": [
            {"name": "copy", "type": "DATA_SYNC", "sync": {"source": {"dataset": "dataos://a:s/t"},
                                                          "target": {"dataset": "dataos://b:s/t"}}},
            {"name": "prof", "type": "BUILTIN", "builtin": "profile@1", "params": DATASETS},
        ],
        "relations": [{"from": "copy", "to": "prof"}],
    }  # fmt: skip
    spec = normalize_workflow(enos)
    assert spec["tasks"]["prof"]["job"]["config"]["builtin"] == "profile@1"
    assert spec["tasks"]["copy"]["job"]["config"]["sync"]["mode"] == "full"
    assert spec["tasks"]["prof"]["depends_on"] == ["copy"]
    for task, message in [
        ({"name": "a", "type": "BUILTIN", "builtin": "profile"}, "tasks[0].params.input: is required"),
        ({"name": "a", "type": "SHELL", "builtin": "profile"}, "tasks[0].builtin: applies to BUILTIN tasks only"),
        ({"name": "a", "type": "SHELL", "resource": "r", "params": {}}, "tasks[0].params: applies only with builtin"),
    ]:
        with pytest.raises(JobledgerError) as caught:
            normalize_workflow({"name": "w", "tasks": [task]})
        assert message in str(caught.value), str(caught.value)
    assert enos_to_native({"name": "w", "tasks": [enos["tasks"][1]]})[0]["tasks"]["prof"]["job"]["type"] == "BUILTIN"
