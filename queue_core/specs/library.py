"""The built-in scripts shipped with jobledger (EnOS's Common Library): each a DuckDB pipeline or a DATA_SYNC.

Every SQL built-in reads one dataset (the view ``input``), runs one query (the step ``result``) and writes
it to one dataset, so it runs in the SQL runner like any pipeline: same depots, sandbox, save modes and
lineage. Names in the SQL are parameters checked as identifiers and quoted; values are quoted literals.
A new version of a built-in is a new entry: a task names the version it was written for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from queue_core.specs.builtin_params import Builtin, Param
from queue_core.specs.sync import SYNC_MODES

__all__ = ["LIBRARY"]

INPUT_VIEW = "input"
RESULT_STEP = "result"
AGGREGATES = ("first", "sum", "min", "max", "count", "avg")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _io(input_format: str | None = None, output_format: str | None = None) -> tuple[Param, ...]:
    """The parameters every SQL built-in has: where it reads, where it writes, how."""
    return (
        Param("input", "dataset", "the dataset read"),
        Param("inputFormat", "format", "the input's format", default=input_format, optional=True),
        Param("output", "dataset", "the dataset written"),
        Param("outputFormat", "format", "the output's format", default=output_format, optional=True),
        Param("saveMode", "saveMode", "what happens when the output exists", default="overwrite"),
    )


def _pipeline(params: Mapping[str, Any], sql: str) -> tuple[str, dict[str, Any]]:
    return "pipeline", {
        "inputs": [{"name": INPUT_VIEW, "dataset": params["input"], "format": params["inputFormat"]}],
        "steps": [{"sequence": [{"name": RESULT_STEP, "sql": sql}]}],
        "outputs": [
            {
                "name": RESULT_STEP,
                "dataset": params["output"],
                "format": params["outputFormat"],
                "options": {"saveMode": params["saveMode"]},
            }
        ],
    }


def _columns_to_rows(p: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    columns = ", ".join(map(_q, p["columns"]))
    unpivot = f"UNPIVOT INCLUDE NULLS ({_q(p['valueColumn'])} FOR {_q(p['nameColumn'])} IN ({columns}))"
    return _pipeline(p, f"SELECT * FROM {_q(INPUT_VIEW)} {unpivot}")


def _rows_to_columns(p: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    values = ", ".join(map(_lit, p["columns"]))
    group = f" GROUP BY {', '.join(map(_q, p['keys']))}" if p["keys"] else ""
    using = f"{p['aggregate']}({_q(p['values'])})"
    pivot = f"PIVOT {_q(INPUT_VIEW)} ON {_q(p['names'])} IN ({values}) USING {using}{group}"
    return _pipeline(p, f"SELECT * FROM ({pivot})")


def _csv_to_parquet(p: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    return _pipeline({**p, "inputFormat": "csv", "outputFormat": "parquet"}, f"SELECT * FROM {_q(INPUT_VIEW)}")


def _deduplicate(p: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    keys = ", ".join(map(_q, p["key"]))
    order = f"{_q(p['latestBy'])} DESC NULLS LAST"
    latest = f"row_number() OVER (PARTITION BY {keys} ORDER BY {order})"
    return _pipeline(p, f"SELECT * FROM {_q(INPUT_VIEW)} QUALIFY {latest} = 1")


# One row per input column, in the input's order. Every aggregate runs over all columns at once
# (COLUMNS(*)) and is turned into rows; min and max are computed in the column's own type, shown as text.
_PROFILE = """
WITH cols AS (SELECT column_name, column_type, row_number() OVER () AS position FROM (DESCRIBE "input")),
n0 AS (SELECT count(*) - count(COLUMNS(*)) FROM "input"),
n AS (FROM n0 UNPIVOT (nulls FOR column_name IN (COLUMNS(*)))),
d0 AS (SELECT count(DISTINCT COLUMNS(*)) FROM "input"),
d AS (FROM d0 UNPIVOT (distinct_values FOR column_name IN (COLUMNS(*)))),
lo0 AS (SELECT CAST(min(COLUMNS(*)) AS VARCHAR) FROM "input"),
lo AS (FROM lo0 UNPIVOT INCLUDE NULLS (min_value FOR column_name IN (COLUMNS(*)))),
hi0 AS (SELECT CAST(max(COLUMNS(*)) AS VARCHAR) FROM "input"),
hi AS (FROM hi0 UNPIVOT INCLUDE NULLS (max_value FOR column_name IN (COLUMNS(*))))
SELECT cols.position, cols.column_name, cols.column_type, (SELECT count(*) FROM "input") AS row_count,
       n.nulls, d.distinct_values, lo.min_value, hi.max_value
FROM cols JOIN n USING (column_name) JOIN d USING (column_name) JOIN lo USING (column_name)
JOIN hi USING (column_name)
ORDER BY cols.position
"""


def _profile(p: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    return _pipeline(p, _PROFILE.strip())


def _depot_sync(p: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    target: dict[str, Any] = {"dataset": p["target"], "format": p["targetFormat"]}
    if p["saveMode"] is not None:
        target["saveMode"] = p["saveMode"]
    return "sync", {
        "source": {"dataset": p["source"], "format": p["sourceFormat"]},
        "target": target,
        "mode": p["mode"],
        "watermark": p["watermark"],
    }


_BUILTINS = (
    Builtin(
        "columns-to-rows",
        1,
        "Unpivot: each listed column becomes a row of (name, value); the other columns are kept on each row.",
        (
            *_io(),
            Param("columns", "columns", "the columns turned into rows (of one type)"),
            Param("nameColumn", "column", "the new column holding each turned column's name", default="name"),
            Param("valueColumn", "column", "the new column holding its value", default="value"),
        ),
        _columns_to_rows,
    ),
    Builtin(
        "rows-to-columns",
        1,
        "Pivot: the values of one column become columns, holding an aggregate of another, one row per key.",
        (
            *_io(),
            Param("names", "column", "the column whose values become columns"),
            Param("columns", "values", "the values of names that become columns (others are left out)"),
            Param("values", "column", "the column whose values fill the new columns"),
            Param("keys", "columns", "the columns a row is one of (left out: every other column)", optional=True),
            Param("aggregate", "choice", "how the values of one key and name combine", "first", AGGREGATES),
        ),
        _rows_to_columns,
    ),
    Builtin(
        "depot-sync",
        1,
        "The DATA_SYNC task as a script: copy a dataset between depots, whole or past a watermark column.",
        (
            Param("source", "dataset", "the dataset copied"),
            Param("sourceFormat", "format", "the source's format", optional=True),
            Param("target", "dataset", "the dataset written"),
            Param("targetFormat", "format", "the target's format", optional=True),
            Param("mode", "choice", "full: every row; incremental: rows past the last watermark", "full", SYNC_MODES),
            Param("watermark", "column", "the column whose new values say a row is new", optional=True),
            Param("saveMode", "saveMode", "left out: overwrite for full, append for incremental", optional=True),
        ),
        _depot_sync,
    ),
    Builtin(
        "csv-to-parquet",
        1,
        "Convert a CSV dataset (with a header line; types detected) into Parquet.",
        (
            Param("input", "dataset", "the CSV dataset read"),
            Param("output", "dataset", "the Parquet dataset written"),
            Param("saveMode", "saveMode", "what happens when the output exists", default="overwrite"),
        ),
        _csv_to_parquet,
    ),
    Builtin(
        "deduplicate",
        1,
        "Keep one row per key: the latest by a column (its highest value; rows where it is null come last).",
        (
            *_io(),
            Param("key", "columns", "the columns that identify a row"),
            Param("latestBy", "column", "the column whose highest value marks the row kept"),
        ),
        _deduplicate,
    ),
    Builtin(
        "profile",
        1,
        "Profile a dataset: per column its type, row count, nulls, distinct values, min and max, as a dataset.",
        _io(),
        _profile,
    ),
)

LIBRARY: dict[str, dict[int, Builtin]] = {}
for _builtin in _BUILTINS:
    LIBRARY.setdefault(_builtin.name, {})[_builtin.version] = _builtin
