"""The SQL job runner, run as the attempt's child: inputs as views, then steps as views or a ``.sql`` file's
statements, then outputs written atomically."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

# Run as a script by path (not ``-m workers.sql_runner``): the ``workers`` package imports RQ and redis,
# which would double the child's start-up; queue_core is imported only for an Avro schema.

__all__ = ["PipelineError", "lock_down", "main", "run_pipeline"]

PREVIEW_ROWS = 20
MAX_MESSAGE = 2000
_READERS = {"csv": "read_csv", "parquet": "read_parquet", "json": "read_json"}
_COPY = {"csv": "FORMAT csv, HEADER true", "parquet": "FORMAT parquet", "json": "FORMAT json"}


class PipelineError(Exception):
    """Raised when the pipeline cannot go on; the message names the input, step or output."""


def q(name: str) -> str:
    """An identifier quoted for SQL (names are validated identifiers already; this is the second fence)."""
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    """A string literal for SQL."""
    return "'" + text.replace("'", "''") + "'"


@dataclass
class _Target:
    """Where one dataset lives: files (a path, its format) or a warehouse table."""

    format: str
    path: Path | None = None
    files: list[str] = field(default_factory=list)
    table: str = ""  # "alias"."schema"."table"
    alias: str = ""
    schema: str = ""
    name: str = ""
    columns: list[tuple[str, str, bool]] = field(default_factory=list)  # from an Avro schema
    s3: Any = None  # a workers.sql_s3.S3Dataset: the files are a copy in the run folder
    pg: Any = None  # a workers.sql_postgres.PostgresTable: an input's rows are a CSV copy in the run folder
    folder: bool = False  # an output written as a folder of files


def _s3_target(
    depot: dict[str, Any], address: dict[str, Any], fmt: str, stage: Path, output: bool, folder: bool
) -> _Target:
    """An S3 dataset staged in the run folder: an input's objects copied in, an output's file to put."""
    from workers.sql_s3 import s3_dataset  # absolute: the runner runs as a script

    dataset = s3_dataset(depot, address, fmt)
    try:
        if output:
            stage.mkdir(parents=True, exist_ok=True)
            is_folder = folder or dataset.is_folder()
            return _Target(fmt, path=stage / f"{address['dataset']}.{fmt}", s3=dataset, folder=is_folder)
        files = dataset.fetch(stage)
    except Exception as exc:  # botocore's errors have no common root worth importing here
        raise PipelineError(f"{address['address']}: S3 cannot be read: {exc}") from exc
    if not files:
        raise PipelineError(f"{address['address']}: no object {dataset.key} or {dataset.folder}*.{fmt}")
    return _Target(fmt, path=stage, files=[str(f) for f in files], s3=dataset)


def _pg_target(
    depot: dict[str, Any], address: dict[str, Any], stage: Path, password: str | None, output: bool
) -> _Target:
    """A PostgreSQL table: an input's rows copied into the run folder as CSV, an output's CSV to load."""
    from psycopg import Error as PostgresError

    from workers.sql_postgres import PostgresTable  # absolute: the runner runs as a script

    table = PostgresTable(depot["config"], address, password)
    path = stage / f"{address['dataset']}.csv"
    if output:
        stage.mkdir(parents=True, exist_ok=True)
        return _Target("table", path=path, pg=table)
    try:
        columns = table.fetch(path)
    except (PostgresError, LookupError) as exc:
        raise PipelineError(f"{address['address']}: PostgreSQL cannot be read: {exc}") from exc
    return _Target("table", path=path, files=[str(path)], pg=table, columns=[(n, t, True) for n, t in columns])


def _file_target(depot: dict[str, Any], address: dict[str, Any], fmt: str, folder: bool = False) -> _Target:
    root = Path(depot["config"]["path"])
    base = root if address["collection"] == "none" else root / address["collection"]
    path = base / address["dataset"]
    if path.is_dir() or folder:
        files = sorted(str(p) for p in path.glob(f"*.{fmt}"))
        return _Target(fmt, path=path, files=files, folder=True)
    exact = base / f"{address['dataset']}.{fmt}"
    return _Target(fmt, path=exact, files=[str(exact)])


def _resolve(
    depots: dict[str, Any],
    spec: dict[str, Any],
    aliases: dict[str, str],
    stage: Path,
    output: bool = False,
    passwords: dict[str, str] | None = None,
) -> _Target:
    address = spec["dataset"]
    depot = depots[address["depot"]]
    where = stage / ("out" if output else "in") / spec["name"]
    folder = output and spec.get("options", {}).get("layout") == "folder"
    if depot["type"] == "s3":
        target = _s3_target(depot, address, spec["format"], where, output, folder)
    elif depot["type"] == "postgres":
        return _pg_target(depot, address, where, (passwords or {}).get(address["depot"]), output)
    elif spec["format"] != "table":
        target = _file_target(depot, address, spec["format"], folder)
    else:
        alias = aliases.setdefault(address["depot"], f"wh_{address['depot']}")
        table = f"{q(alias)}.{q(address['collection'])}.{q(address['dataset'])}"
        return _Target("table", table=table, alias=alias, schema=address["collection"], name=address["dataset"])
    schema = spec.get("schemaPath")
    if schema is not None:
        from queue_core.errors import InvalidInput
        from queue_core.pipeline import read_schema

        try:
            target.columns = read_schema(depots[schema["depot"]], schema, f"input {spec['name']}: schemaPath")
        except InvalidInput as exc:
            raise PipelineError(str(exc)) from exc
    return target


def lock_down(con: duckdb.DuckDBPyConnection, directories: list[str], paths: list[str]) -> None:
    """Restrict file access to the declared datasets and the run folder, then lock the configuration."""
    con.execute(f"SET allowed_directories=[{', '.join(lit(d.rstrip('/') + '/') for d in directories)}]")
    if paths:
        con.execute(f"SET allowed_paths=[{', '.join(lit(p) for p in paths)}]")
    con.execute("SET enable_external_access=false")
    con.execute("SET lock_configuration=true")


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _reader(target: _Target) -> str:
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


def _source(target: _Target) -> str:
    """What a view over the dataset selects from."""
    return target.table if target.format == "table" and target.pg is None else _reader(target)


def _exists(con: duckdb.DuckDBPyConnection, target: _Target) -> bool:
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


def _write(con: duckdb.DuckDBPyConnection, view: str, target: _Target, mode: str, temp: Path | None) -> int:
    """Write the view; ``overwrite`` and ``append`` of files go through ``temp`` and one rename."""
    if target.pg is not None:
        return _write_pg(con, view, target, mode)
    if target.format == "table":
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {q(target.alias)}.{q(target.schema)}")
        # One transaction: a failed or killed run leaves the previous table whole.
        con.execute("BEGIN")
        try:
            if mode == "append" and _exists(con, target):
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
        source = f"SELECT * FROM {_reader(target)} UNION ALL BY NAME {source}"
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


def _write_s3(con: duckdb.DuckDBPyConnection, view: str, target: _Target, mode: str, temp: Path) -> int:
    """Write the file in the run folder (the existing object first, to append to), then put it whole."""
    assert target.path is not None
    local = _Target(target.format, path=target.path, files=[str(target.path)])
    if target.folder:
        # A folder takes the new rows as a new object; an append keeps the objects it has beside it.
        rows = _write(con, view, local, "overwrite", temp)
    else:
        if mode == "append" and target.s3.exists():
            target.s3.s3.download_file(target.s3.bucket, target.s3.key, str(target.path))
        rows = _write(con, view, local, mode, temp)
    try:
        if target.folder:
            target.s3.put_folder([target.path], mode)
        else:
            target.s3.put(target.path)
    except Exception as exc:  # botocore's errors have no common root worth importing here
        raise PipelineError(f"{target.s3.key}: S3 cannot be written: {exc}") from exc
    target.files = [str(target.path)]
    return rows


def _write_pg(con: duckdb.DuckDBPyConnection, view: str, target: _Target, mode: str) -> int:
    """Write the view as CSV in the run folder, then load it into PostgreSQL in one transaction."""
    from psycopg import Error as PostgresError

    assert target.path is not None
    rel = con.sql(f"SELECT * FROM {q(view)} LIMIT 0")
    columns = [(name, str(kind)) for name, kind in zip(rel.columns, rel.types, strict=True)]
    # bytea reads '\x' and hex; types PostgreSQL has no match for (lists, structs, ...) go as their text.
    from workers.sql_postgres import postgres_type

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


def _preview(con: duckdb.DuckDBPyConnection, target: _Target) -> tuple[list[list[str]], list[list[Any]]]:
    if target.pg is not None:
        columns, rows = target.pg.preview(PREVIEW_ROWS)
        return columns, [[_jsonable(v) for v in row] for row in rows]
    if target.s3 is not None and not target.files:
        return [], []  # an S3 output left alone (saveMode ignore): not fetched just to preview it
    if target.path is not None and target.path.is_dir():
        target.files = sorted(str(p) for p in target.path.glob(f"*.{target.format}"))  # the new folder's files
    return _first_rows(con, _source(target))


def _first_rows(con: duckdb.DuckDBPyConnection, source: str) -> tuple[list[list[str]], list[list[Any]]]:
    """Columns with their types and the first rows of ``source``, as JSON values."""
    rel = con.sql(f"SELECT * FROM {source} LIMIT {PREVIEW_ROWS}")
    columns = [[name, str(kind)] for name, kind in zip(rel.columns, rel.types, strict=True)]
    # A TIMESTAMPTZ fetched into Python needs pytz; its text is what a preview shows anyway.
    zoned = [q(n) for n, k in columns if k == "TIMESTAMP WITH TIME ZONE"]
    if zoned:
        rel = rel.project("* REPLACE (" + ", ".join(f"CAST({c} AS VARCHAR) AS {c}" for c in zoned) + ")")
    return columns, [[_jsonable(v) for v in row] for row in rel.fetchall()]


def run_pipeline(spec: dict[str, Any], passwords: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one pipeline (its steps, or a ``.sql`` script) in a fresh DuckDB session; the result says
    what each output wrote, and what the last step (with no output) or the script's last statement returned.

    ``passwords``: each postgres depot's password, by depot name.
    """
    pipeline, depots, run_dir = spec["pipeline"], spec["depots"], Path(spec["run_dir"])
    script: str | None = spec.get("script")
    aliases: dict[str, str] = {}
    stage = run_dir / "stage"
    inputs = [(x, _resolve(depots, x, aliases, stage, passwords=passwords)) for x in pipeline["inputs"]]
    outputs = [(x, _resolve(depots, x, aliases, stage, True, passwords)) for x in pipeline["outputs"]]
    token = uuid.uuid4().hex[:12]
    temps = {
        x["name"]: t.path.with_name(f".{t.path.name}.{token}.tmp") if t.path is not None else None for x, t in outputs
    }
    directories, paths = [str(run_dir)], []
    for x, target in inputs:
        if target.format == "table":
            continue  # a warehouse table: attached, or copied into the run folder; no file to allow
        if target.path is not None and target.path.is_dir():
            directories.append(str(target.path))
        else:
            paths += target.files
            if not Path(target.files[0]).exists():
                raise PipelineError(f"input {x['name']}: {x['dataset']['address']} has no file {target.files[0]}")
    for x, target in outputs:
        if target.pg is not None:
            continue  # written in the run folder first
        if target.path is not None and target.folder and target.s3 is None:
            target.path.parent.mkdir(parents=True, exist_ok=True)
            directories += [str(target.path), str(temps[x["name"]])]
        elif target.path is not None:
            target.path.parent.mkdir(parents=True, exist_ok=True)
            paths += [str(target.path), str(temps[x["name"]])]
    # A script can write (CREATE, INSERT, DROP ...): its warehouses are attached read-only while it runs,
    # and the ones it writes outputs to attached for writing (by the runner, so allowed) once it is done.
    read_only = set(aliases.values()) if script is not None else set()
    written_to = {aliases[x["dataset"]["depot"]] for x, t in outputs if t.alias} if script is not None else set()
    for depot_name, alias in aliases.items():
        if alias in written_to:
            path = depots[depot_name]["config"]["path"]
            paths += [path, f"{path}.wal"]
    con = duckdb.connect(":memory:")
    input_aliases = {t.alias for _, t in inputs if t.alias}
    for depot_name, alias in aliases.items():
        if alias in read_only and alias not in input_aliases:
            continue  # written to only: attached after the script
        _attach(con, depots[depot_name], depot_name, alias, alias in read_only)
    lock_down(con, directories, paths)

    for x, target in inputs:
        source = _source(target)
        try:
            con.execute(f"CREATE VIEW {q(x['name'])} AS SELECT * FROM {source}")
        except duckdb.Error as exc:
            raise PipelineError(f"input {x['name']}: {exc}") from exc
    last: dict[str, Any] | None = None
    if script is not None:
        last = run_script(con, script, pipeline["explain"])
        for depot_name, alias in aliases.items():
            if alias in written_to:
                if alias in input_aliases:
                    con.execute(f"DETACH {q(alias)}")
                _attach(con, depots[depot_name], depot_name, alias, False)
    for step in pipeline["steps"]:
        _run_step(con, step, pipeline["explain"])
    written = [_output(con, x, target, temps[x["name"]], inputs, script is not None) for x, target in outputs]
    result: dict[str, Any] = {"outputs": written, "inputs": [x["dataset"]["address"] for x, _ in inputs]}
    if last is not None:
        result["query"] = last  # the script's last statement
    elif not outputs and pipeline["steps"]:
        step = pipeline["steps"][-1]["name"]
        try:
            columns, rows = _first_rows(con, q(step))
        except duckdb.Error as exc:
            raise PipelineError(f"step {step}: {exc}") from exc
        result["query"] = {"step": step, "columns": columns, "preview": rows}  # a query with no output
    con.close()
    return result


def _attach(con: duckdb.DuckDBPyConnection, depot: dict[str, Any], name: str, alias: str, read_only: bool) -> None:
    mode = " (READ_ONLY)" if read_only else ""
    try:
        con.execute(f"ATTACH {lit(depot['config']['path'])} AS {q(alias)}{mode}")
    except duckdb.Error as exc:
        raise PipelineError(f"depot {name}: cannot open its warehouse: {exc}") from exc


def _output(
    con: duckdb.DuckDBPyConnection,
    x: dict[str, Any],
    target: _Target,
    temp: Path | None,
    inputs: list[tuple[dict[str, Any], _Target]],
    script: bool,
) -> dict[str, Any]:
    """Write one output as its save mode says; what was written, with its columns and first rows."""
    if script:
        try:
            con.execute(f"SELECT * FROM {q(x['name'])} LIMIT 0")
        except duckdb.Error:
            raise PipelineError(f"output {x['name']}: the script created no view or table {x['name']}") from None
    exists = _exists(con, target)
    mode = x["saveMode"]
    if exists and mode == "errorIfExists":
        raise PipelineError(f"output {x['name']}: {x['dataset']['address']} exists and saveMode is errorIfExists")
    entry: dict[str, Any] = {
        "name": x["name"],
        "dataset": x["dataset"]["address"],
        "format": x["format"],
        "saveMode": mode,
        "written": not (exists and mode == "ignore"),
        "rows": 0,
    }
    if entry["written"]:
        try:
            entry["rows"] = _write(con, x["name"], target, mode, temp)
        except duckdb.Error as exc:
            said = f"output {x['name']}" if script else f"output {x['name']} (step {x['name']})"
            raise PipelineError(_input_error(exc, inputs) or f"{said}: {exc}") from exc
        print(f"output {x['name']}: {entry['rows']} rows written to {x['dataset']['address']} ({mode})", flush=True)
    else:
        print(f"output {x['name']}: {x['dataset']['address']} exists; ignored", flush=True)
    try:
        entry["columns"], entry["preview"] = _preview(con, target)
    except duckdb.Error as exc:
        raise PipelineError(f"output {x['name']}: written, but cannot be read back: {exc}") from exc
    return entry


def _input_error(exc: duckdb.Error, inputs: list[tuple[dict[str, Any], _Target]]) -> str | None:
    """A CSV row that does not fit its input's types, said as input, line and column; None for other errors."""
    text = str(exc)
    line, column = re.search(r"CSV Error on Line: (\d+)", text), re.search(r'converting column "([^"]*)"', text)
    file = re.search(r"file = (.+)", text)
    if not (line and column and file):
        return None
    typed = [x["name"] for x, t in inputs if t.columns and file.group(1).strip() in t.files]
    if not typed or column.group(1) not in {c for x, t in inputs if x["name"] == typed[0] for c, _, _ in t.columns}:
        return None  # an untyped input: the error is the step's (a CAST the reader ran), said as such
    name = typed[0]
    problem = re.search(r"(Could not convert [^\n]*)", text)
    detail = f": {problem.group(1)}" if problem else ""
    return f"input {name}: line {line.group(1)}, column {column.group(1)} does not fit its schema{detail}"


def _run_step(con: duckdb.DuckDBPyConnection, step: dict[str, str], explain: bool) -> None:
    """Create the step's view from exactly one SELECT; anything else (SET, ATTACH, COPY, ...) is refused."""
    name = step["name"]
    try:
        statements = con.extract_statements(step["sql"])
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            kinds = ", ".join(s.type.name for s in statements) or "nothing"
            raise PipelineError(f"step {name}: must be one SELECT query, not {kinds}")
        query = statements[0].query.rstrip().rstrip(";")
        con.execute(f"CREATE VIEW {q(name)} AS {query}")
        if explain:
            for _kind, plan in con.execute(f"EXPLAIN SELECT * FROM {q(name)}").fetchall():
                print(f"plan of step {name}:\n{plan}", flush=True)
    except duckdb.Error as exc:
        raise PipelineError(f"step {name}: {exc}") from exc


# What a script may run: queries and changes to its own session's tables and views. Everything else
# (SET, RESET, USE, ATTACH, DETACH, INSTALL, LOAD, COPY, EXPORT, PRAGMA, CALL, transactions...) is refused.
_SCRIPT_STATEMENTS = frozenset(
    {
        duckdb.StatementType.SELECT,
        duckdb.StatementType.INSERT,
        duckdb.StatementType.UPDATE,
        duckdb.StatementType.DELETE,
        duckdb.StatementType.CREATE,
        duckdb.StatementType.DROP,
        duckdb.StatementType.ALTER,
        duckdb.StatementType.EXPLAIN,
    }
)
_CREATE_SECRET = re.compile(r"\s*CREATE\s+(OR\s+REPLACE\s+)?(PERSISTENT\s+|TEMP\s+|TEMPORARY\s+)?SECRET\b", re.I)


def run_script(con: duckdb.DuckDBPyConnection, script: str, explain: bool) -> dict[str, Any]:
    """Run a ``.sql`` file's statements in order; the last one's columns and first rows."""
    try:
        statements = con.extract_statements(script)
    except duckdb.Error as exc:
        raise PipelineError(f"script: {exc}") from exc
    if not statements:
        raise PipelineError("script: no statement in it")
    position = 0
    for number, statement in enumerate(statements, 1):
        text = statement.query
        start = script.find(text, position)
        position = start + len(text) if start >= 0 else position
        lead = len(text) - len(text.lstrip())
        where = f"statement {number} (line {script.count(chr(10), 0, max(start, 0) + lead) + 1})"
        try:
            kind = statement.type
        except ValueError:  # a statement type this DuckDB build has no name for
            kind = None
        if kind not in _SCRIPT_STATEMENTS or _CREATE_SECRET.match(text):
            shown = kind.name if kind is not None else " ".join(text.split()[:2]).upper()
            raise PipelineError(f"{where}: {shown} is not allowed in a SQL job (queries and CREATE, INSERT, ...)")
        query = text.strip().rstrip(";")
        try:
            if explain and kind == duckdb.StatementType.SELECT:
                for _kind, plan in con.execute(f"EXPLAIN {query}").fetchall():
                    print(f"plan of {where}:\n{plan}", flush=True)
            if number < len(statements):
                con.execute(query)
                continue
            if kind == duckdb.StatementType.SELECT:
                columns, rows = _first_rows(con, f"({query}\n)")  # a trailing comment must not eat the ")"
            else:
                cursor = con.execute(query)
                columns = [[d[0], str(d[1])] for d in cursor.description or []]
                rows = [[_jsonable(v) for v in row] for row in cursor.fetchmany(PREVIEW_ROWS)] if columns else []
        except duckdb.Error as exc:
            raise PipelineError(f"{where}: {exc}") from exc
    return {"statement": len(statements), "columns": columns, "preview": rows}


def main(argv: list[str]) -> int:
    passwords = {}
    if any(k.startswith("JOBLEDGER_PG_PASSWORD_") for k in os.environ):
        from workers.sql_postgres import take_passwords

        passwords = take_passwords()
    spec_path = Path(argv[0])
    spec = json.loads(spec_path.read_text())
    result_path = Path(spec["result_path"])
    try:
        result = run_pipeline(spec, passwords)
    except (PipelineError, OSError) as exc:
        message = " ".join(str(exc).split())[:MAX_MESSAGE]
        print(message, file=sys.stderr, flush=True)
        result_path.write_text(json.dumps({"error": message}))
        return 1
    staged = result_path.with_suffix(".tmp")
    staged.write_text(json.dumps(result))
    shutil.move(staged, result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
