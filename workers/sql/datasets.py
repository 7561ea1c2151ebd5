"""Where a SQL job's datasets live and how they are read and written: files, folders, warehouse tables,
S3 objects and PostgreSQL tables, each written atomically; their columns and first rows for the result."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

__all__ = [
    "PREVIEW_ROWS",
    "PipelineError",
    "Target",
    "dataset_exists",
    "first_rows",
    "jsonable",
    "lit",
    "preview",
    "q",
    "resolve",
    "selectable",
    "typed",
    "write",
]

PREVIEW_ROWS = 20
_READERS = {"csv": "read_csv", "parquet": "read_parquet", "json": "read_json"}
_COPY = {"csv": "FORMAT csv, HEADER true", "parquet": "FORMAT parquet", "json": "FORMAT json"}


# Not a JobledgerError: the runner's child imports nothing of queue_core (see tests/test_error_root.py).
class PipelineError(Exception):
    """Raised in the SQL runner's child when the pipeline cannot go on; its message is the run's failure message."""


def q(name: str) -> str:
    """An identifier quoted for SQL (names are validated identifiers already; this is the second fence)."""
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    """A string literal for SQL."""
    return "'" + text.replace("'", "''") + "'"


@dataclass
class Target:
    """Where one dataset lives: files (a path, its format) or a warehouse table."""

    format: str
    path: Path | None = None
    files: list[str] = field(default_factory=list)
    table: str = ""  # "alias"."schema"."table"
    alias: str = ""
    schema: str = ""
    name: str = ""
    columns: list[tuple[str, str, bool]] = field(default_factory=list)  # from an Avro schema
    s3: Any = None  # a workers.sql.s3.S3Dataset: the files are a copy in the run folder
    pg: Any = None  # a workers.sql.postgres.PostgresTable: an input's rows are a CSV copy in the run folder
    jdbc: Any = None  # a workers.sql.spark_jdbc.JdbcTable: on Spark, read and written by Spark itself
    s3a: Any = None  # a workers.sql.spark_s3a.S3aDataset: on Spark, read and written by Spark itself (s3a)
    folder: bool = False  # an output written as a folder of files


def _s3_target(
    depot: dict[str, Any], address: dict[str, Any], fmt: str, stage: Path, output: bool, folder: bool
) -> Target:
    """An S3 dataset staged in the run folder: an input's objects copied in, an output's file to put."""
    from workers.sql.s3 import s3_dataset  # absolute: the runner runs as a script

    dataset = s3_dataset(depot, address, fmt)
    try:
        if output:
            stage.mkdir(parents=True, exist_ok=True)
            is_folder = folder or dataset.is_folder()
            return Target(fmt, path=stage / f"{address['dataset']}.{fmt}", s3=dataset, folder=is_folder)
        files = dataset.fetch(stage)
    except Exception as exc:  # botocore's errors have no common root worth importing here
        raise PipelineError(f"{address['address']}: S3 cannot be read: {exc}") from exc
    if not files:
        raise PipelineError(f"{address['address']}: no object {dataset.key} or {dataset.folder}*.{fmt}")
    return Target(fmt, path=stage, files=[str(f) for f in files], s3=dataset)


def _pg_target(
    depot: dict[str, Any],
    address: dict[str, Any],
    stage: Path,
    password: str | None,
    output: bool,
    after: dict[str, str] | None = None,
) -> Target:
    """A PostgreSQL table: an input's rows copied into the run folder as CSV, an output's CSV to load."""
    from psycopg import Error as PostgresError

    from workers.sql.postgres import PostgresTable  # absolute: the runner runs as a script

    table = PostgresTable(depot["config"], address, password)
    path = stage / f"{address['dataset']}.csv"
    if output:
        stage.mkdir(parents=True, exist_ok=True)
        return Target("table", path=path, pg=table)
    try:
        columns = table.fetch(path, after)
    except (PostgresError, LookupError) as exc:
        raise PipelineError(f"{address['address']}: PostgreSQL cannot be read: {exc}") from exc
    return Target("table", path=path, files=[str(path)], pg=table, columns=[(n, t, True) for n, t in columns])


def _file_target(depot: dict[str, Any], address: dict[str, Any], fmt: str, folder: bool = False) -> Target:
    root = Path(depot["config"]["path"])
    base = root if address["collection"] == "none" else root / address["collection"]
    path = base / address["dataset"]
    if path.is_dir() or folder:
        files = sorted(str(p) for p in path.glob(f"*.{fmt}"))
        return Target(fmt, path=path, files=files, folder=True)
    exact = base / f"{address['dataset']}.{fmt}"
    return Target(fmt, path=exact, files=[str(exact)])


def resolve(
    depots: dict[str, Any],
    spec: dict[str, Any],
    aliases: dict[str, str],
    stage: Path,
    output: bool = False,
    passwords: dict[str, str] | None = None,
) -> Target:
    address = spec["dataset"]
    depot = depots[address["depot"]]
    where = stage / ("out" if output else "in") / spec["name"]
    folder = output and spec.get("options", {}).get("layout") == "folder"
    if depot["type"] == "s3":
        target = _s3_target(depot, address, spec["format"], where, output, folder)
    elif depot["type"] == "postgres":
        # ``after``: an incremental sync's input sends only the rows past its watermark (see specs/sync.py).
        return _pg_target(depot, address, where, (passwords or {}).get(address["depot"]), output, spec.get("after"))
    elif spec["format"] != "table":
        target = _file_target(depot, address, spec["format"], folder)
    else:
        alias = aliases.setdefault(address["depot"], f"wh_{address['depot']}")
        table = f"{q(alias)}.{q(address['collection'])}.{q(address['dataset'])}"
        return Target("table", table=table, alias=alias, schema=address["collection"], name=address["dataset"])
    return typed(depots, spec, target)


def typed(depots: dict[str, Any], spec: dict[str, Any], target: Target) -> Target:
    """The target with the columns of its input's Avro ``schemaPath``, when it names one."""
    schema = spec.get("schemaPath")
    if schema is not None:
        from queue_core.errors import InvalidInput
        from queue_core.services.schemas import read_schema

        try:
            target.columns = read_schema(depots[schema["depot"]], schema, f"input {spec['name']}: schemaPath")
        except InvalidInput as exc:
            raise PipelineError(str(exc)) from exc
    return target


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def reader(target: Target) -> str:
    files = "[" + ", ".join(lit(f) for f in target.files) + "]"
    if target.pg is not None:
        # PostgreSQL's CSV: an empty unquoted field is NULL, "" an empty string; bytea is '\x' and hex.
        types = ", ".join(f"{lit(n)}: {lit('VARCHAR' if k == 'BLOB' else k)}" for n, k, _ in target.columns)
        blobs = ", ".join(f"unhex(substr({q(n)}, 3)) AS {q(n)}" for n, k, _ in target.columns if k == "BLOB")
        read = f"read_csv({files}, header=true, columns={{{types}}}, auto_detect=false, allow_quoted_nulls=false)"
        return f"(SELECT * REPLACE ({blobs}) FROM {read})" if blobs else read
    if target.format == "csv" and target.columns:
        types = ", ".join(f"{lit(name)}: {lit(kind)}" for name, kind, _ in target.columns)
        return f"read_csv({files}, header=true, columns={{{types}}})"
    if target.format == "csv":
        return f"read_csv({files}, header=true)"
    return f"{_READERS[target.format]}({files})"


def selectable(target: Target) -> str:
    """What a view over the dataset selects from."""
    return target.table if target.format == "table" and target.pg is None else reader(target)


def dataset_exists(con: duckdb.DuckDBPyConnection, target: Target) -> bool:
    if target.pg is not None:
        return bool(target.pg.exists())
    if target.s3 is not None:
        return bool(target.s3.exists())
    if target.format != "table":
        assert target.path is not None
        return target.path.exists()
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND schema_name = ? AND table_name = ?",
        [target.alias, target.schema, target.name],
    ).fetchone()
    return bool(found and found[0])


def write(con: duckdb.DuckDBPyConnection, view: str, target: Target, mode: str, temp: Path | None) -> int:
    """Write the view; ``overwrite`` and ``append`` of files go through ``temp`` and one rename."""
    if target.jdbc is not None:
        return int(target.jdbc.write_view(view, mode))  # ``view``: Spark's, not DuckDB's
    if target.s3a is not None:
        return int(target.s3a.write_view(view, mode))  # likewise
    if target.pg is not None:
        return _write_pg(con, view, target, mode)
    if target.format == "table":
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {q(target.alias)}.{q(target.schema)}")
        # One transaction: a failed or killed run leaves the previous table whole.
        con.execute("BEGIN")
        try:
            if mode == "append" and dataset_exists(con, target):
                row = con.execute(f"INSERT INTO {target.table} BY NAME SELECT * FROM {q(view)}").fetchone()
            else:
                con.execute(f"CREATE OR REPLACE TABLE {target.table} AS SELECT * FROM {q(view)}")
                row = con.execute(f"SELECT count(*) FROM {target.table}").fetchone()
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return int(row[0]) if row else 0
    assert target.path is not None and temp is not None
    if target.s3 is not None:
        return _write_s3(con, view, target, mode, temp)
    source = f"SELECT * FROM {q(view)}"
    if mode == "append" and target.path.exists():
        source = f"SELECT * FROM {reader(target)} UNION ALL BY NAME {source}"
    folder = target.folder
    staged = temp / f"part-0.{target.format}" if folder else temp
    try:
        if folder:
            temp.mkdir()
        written = con.execute(f"COPY ({source}) TO {lit(str(staged))} ({_COPY[target.format]})").fetchone()
        if folder and target.path.exists():
            # A folder cannot be replaced in one rename: move the old one aside, the new one in, then drop the old.
            old = temp.with_suffix(".old")
            os.rename(target.path, old)
            os.rename(temp, target.path)
            shutil.rmtree(old)
        elif folder:
            os.rename(temp, target.path)
        else:
            os.replace(temp, target.path)  # readers see the old file or the new one, never half of one
    finally:
        _remove(temp)
    for stale in target.path.parent.glob(f".{target.path.name}.*.tmp"):
        _remove(stale)  # left by a run killed mid-write
    return int(written[0]) if written else 0


def _write_s3(con: duckdb.DuckDBPyConnection, view: str, target: Target, mode: str, temp: Path) -> int:
    """Write the file in the run folder (the existing object first, to append to), then put it whole."""
    assert target.path is not None
    local = Target(target.format, path=target.path, files=[str(target.path)])
    if target.folder:
        # A folder takes the new rows as a new object; an append keeps the objects it has beside it.
        rows = write(con, view, local, "overwrite", temp)
    else:
        if mode == "append" and target.s3.exists():
            target.s3.s3.download_file(target.s3.bucket, target.s3.key, str(target.path))
        rows = write(con, view, local, mode, temp)
    try:
        if target.folder:
            target.s3.put_folder([target.path], mode)
        else:
            target.s3.put(target.path)
    except Exception as exc:  # botocore's errors have no common root worth importing here
        raise PipelineError(f"{target.s3.key}: S3 cannot be written: {exc}") from exc
    target.files = [str(target.path)]
    return rows


def _write_pg(con: duckdb.DuckDBPyConnection, view: str, target: Target, mode: str) -> int:
    """Write the view as CSV in the run folder, then load it into PostgreSQL in one transaction."""
    from psycopg import Error as PostgresError

    assert target.path is not None
    rel = con.sql(f"SELECT * FROM {q(view)} LIMIT 0")
    columns = [(name, str(kind)) for name, kind in zip(rel.columns, rel.types, strict=True)]
    # bytea reads '\x' and hex; types PostgreSQL has no match for (lists, structs, ...) go as their text.
    from workers.sql.postgres import postgres_type

    parts = [
        f"'\\x' || hex({q(n)}) AS {q(n)}" if k == "BLOB"
        else f"CAST({q(n)} AS VARCHAR) AS {q(n)}" if postgres_type(k) == "text" and k != "VARCHAR"
        else q(n)
        for n, k in columns
    ]  # fmt: skip
    con.execute(f"COPY (SELECT {', '.join(parts)} FROM {q(view)}) TO {lit(str(target.path))} (FORMAT csv, HEADER true)")
    try:
        return int(target.pg.write(target.path, columns, mode))
    except PostgresError as exc:
        raise PipelineError(f"{target.pg.address}: PostgreSQL cannot be written: {exc}") from exc
    finally:
        target.path.unlink(missing_ok=True)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def preview(con: duckdb.DuckDBPyConnection, target: Target) -> tuple[list[list[str]], list[list[Any]]]:
    if target.pg is not None:
        columns, rows = target.pg.preview(PREVIEW_ROWS)
        return columns, [[jsonable(v) for v in row] for row in rows]
    if target.s3a is not None:
        return target.s3a.preview(PREVIEW_ROWS)  # read by Spark
    if target.s3 is not None and not target.files:
        return [], []  # an S3 output left alone (saveMode ignore): not fetched just to preview it
    if target.path is not None and target.path.is_dir():
        target.files = sorted(str(p) for p in target.path.glob(f"*.{target.format}"))  # the new folder's files
    return first_rows(con, selectable(target))


def first_rows(con: duckdb.DuckDBPyConnection, source: str) -> tuple[list[list[str]], list[list[Any]]]:
    """Columns with their types and the first rows of ``source``, as JSON values."""
    rel = con.sql(f"SELECT * FROM {source} LIMIT {PREVIEW_ROWS}")
    columns = [[name, str(kind)] for name, kind in zip(rel.columns, rel.types, strict=True)]
    # A TIMESTAMPTZ fetched into Python needs pytz; its text is what a preview shows anyway.
    zoned = [q(n) for n, k in columns if k == "TIMESTAMP WITH TIME ZONE"]
    if zoned:
        rel = rel.project("* REPLACE (" + ", ".join(f"CAST({c} AS VARCHAR) AS {c}" for c in zoned) + ")")
    return columns, [[jsonable(v) for v in row] for row in rel.fetchall()]
