"""The SQL job runner, run as the attempt's child: inputs as views, steps as views, outputs written atomically."""

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


def _s3_target(depot: dict[str, Any], address: dict[str, Any], fmt: str, stage: Path, output: bool) -> _Target:
    """An S3 dataset staged in the run folder: an input's objects copied in, an output's file to put."""
    from workers.sql_s3 import s3_dataset  # absolute: the runner runs as a script

    dataset = s3_dataset(depot, address, fmt)
    try:
        if output:
            stage.mkdir(parents=True, exist_ok=True)
            return _Target(fmt, path=stage / f"{address['dataset']}.{fmt}", s3=dataset)
        files = dataset.fetch(stage)
    except Exception as exc:  # botocore's errors have no common root worth importing here
        raise PipelineError(f"{address['address']}: S3 cannot be read: {exc}") from exc
    if not files:
        raise PipelineError(f"{address['address']}: no object {dataset.key} or {dataset.folder}*.{fmt}")
    return _Target(fmt, path=stage, files=[str(f) for f in files], s3=dataset)


def _file_target(depot: dict[str, Any], address: dict[str, Any], fmt: str) -> _Target:
    root = Path(depot["config"]["path"])
    base = root if address["collection"] == "none" else root / address["collection"]
    folder = base / address["dataset"]
    if folder.is_dir():
        files = sorted(str(p) for p in folder.glob(f"*.{fmt}"))
        return _Target(fmt, path=folder, files=files)
    exact = base / f"{address['dataset']}.{fmt}"
    return _Target(fmt, path=exact, files=[str(exact)])


def _resolve(
    depots: dict[str, Any], spec: dict[str, Any], aliases: dict[str, str], stage: Path, output: bool = False
) -> _Target:
    address = spec["dataset"]
    depot = depots[address["depot"]]
    if depot["type"] == "s3":
        return _s3_target(depot, address, spec["format"], stage / ("out" if output else "in") / spec["name"], output)
    if spec["format"] != "table":
        target = _file_target(depot, address, spec["format"])
        schema = spec.get("schemaPath")
        if schema is not None:
            where = f"input {spec['name']}: schemaPath {schema['address']}"
            from queue_core.avro import avro_columns
            from queue_core.errors import InvalidInput
            from queue_core.pipeline import local_path

            try:
                target.columns = avro_columns(local_path(depots[schema["depot"]], schema).read_bytes(), where)
            except OSError as exc:
                raise PipelineError(f"{where} cannot be read: {exc.strerror}") from exc
            except InvalidInput as exc:
                raise PipelineError(str(exc)) from exc
        return target
    alias = aliases.setdefault(address["depot"], f"wh_{address['depot']}")
    table = f"{q(alias)}.{q(address['collection'])}.{q(address['dataset'])}"
    return _Target("table", table=table, alias=alias, schema=address["collection"], name=address["dataset"])


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
    if target.format == "csv" and target.columns:
        types = ", ".join(f"{lit(name)}: {lit(kind)}" for name, kind, _ in target.columns)
        return f"read_csv({files}, header=true, columns={{{types}}})"
    if target.format == "csv":
        return f"read_csv({files}, header=true)"
    return f"{_READERS[target.format]}({files})"


def _exists(con: duckdb.DuckDBPyConnection, target: _Target) -> bool:
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
    folder = target.path.is_dir()
    staged = temp / f"part-0.{target.format}" if folder else temp
    try:
        if folder:
            temp.mkdir()
        written = con.execute(f"COPY ({source}) TO {lit(str(staged))} ({_COPY[target.format]})").fetchone()
        if folder:
            # A folder cannot be replaced in one rename: move the old one aside, the new one in, then drop the old.
            old = temp.with_suffix(".old")
            os.rename(target.path, old)
            os.rename(temp, target.path)
            shutil.rmtree(old)
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
    if mode == "append" and target.s3.exists():
        target.s3.s3.download_file(target.s3.bucket, target.s3.key, str(target.path))
    rows = _write(con, view, local, mode, temp)
    try:
        target.s3.put(target.path)
    except Exception as exc:  # botocore's errors have no common root worth importing here
        raise PipelineError(f"{target.s3.key}: S3 cannot be written: {exc}") from exc
    target.files = [str(target.path)]
    return rows


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


def _preview(con: duckdb.DuckDBPyConnection, target: _Target) -> tuple[list[list[str]], list[list[Any]]]:
    if target.s3 is not None and not target.files:
        return [], []  # an S3 output left alone (saveMode ignore): not fetched just to preview it
    if target.path is not None and target.path.is_dir():
        target.files = sorted(str(p) for p in target.path.glob(f"*.{target.format}"))  # the new folder's files
    source = target.table if target.format == "table" else _reader(target)
    rel = con.sql(f"SELECT * FROM {source} LIMIT {PREVIEW_ROWS}")
    columns = [[name, str(kind)] for name, kind in zip(rel.columns, rel.types, strict=True)]
    return columns, [[_jsonable(v) for v in row] for row in rel.fetchall()]


def run_pipeline(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one pipeline in a fresh DuckDB session; the result says what each output wrote."""
    pipeline, depots, run_dir = spec["pipeline"], spec["depots"], Path(spec["run_dir"])
    aliases: dict[str, str] = {}
    inputs = [(x, _resolve(depots, x, aliases, run_dir / "s3")) for x in pipeline["inputs"]]
    outputs = [(x, _resolve(depots, x, aliases, run_dir / "s3", output=True)) for x in pipeline["outputs"]]
    token = uuid.uuid4().hex[:12]
    temps = {
        x["name"]: t.path.with_name(f".{t.path.name}.{token}.tmp") if t.path is not None else None for x, t in outputs
    }
    directories, paths = [str(run_dir)], []
    for x, target in inputs:
        if target.path is not None and target.path.is_dir():
            directories.append(str(target.path))
        else:
            paths += target.files
            if not Path(target.files[0]).exists():
                raise PipelineError(f"input {x['name']}: {x['dataset']['address']} has no file {target.files[0]}")
    for x, target in outputs:
        if target.path is not None and target.path.is_dir():
            directories += [str(target.path), str(temps[x["name"]])]
        elif target.path is not None:
            target.path.parent.mkdir(parents=True, exist_ok=True)
            paths += [str(target.path), str(temps[x["name"]])]
    con = duckdb.connect(":memory:")
    for depot_name, alias in aliases.items():
        try:
            con.execute(f"ATTACH {lit(depots[depot_name]['config']['path'])} AS {q(alias)}")
        except duckdb.Error as exc:
            raise PipelineError(f"depot {depot_name}: cannot open its warehouse: {exc}") from exc
    lock_down(con, directories, paths)

    for x, target in inputs:
        source = target.table if target.format == "table" else _reader(target)
        try:
            con.execute(f"CREATE VIEW {q(x['name'])} AS SELECT * FROM {source}")
        except duckdb.Error as exc:
            raise PipelineError(f"input {x['name']}: {exc}") from exc
    for step in pipeline["steps"]:
        _run_step(con, step, pipeline["explain"])
    written = []
    for x, target in outputs:
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
                entry["rows"] = _write(con, x["name"], target, mode, temps[x["name"]])
            except duckdb.Error as exc:
                raise PipelineError(
                    _input_error(exc, inputs) or f"output {x['name']} (step {x['name']}): {exc}"
                ) from exc
            print(f"output {x['name']}: {entry['rows']} rows written to {x['dataset']['address']} ({mode})", flush=True)
        else:
            print(f"output {x['name']}: {x['dataset']['address']} exists; ignored", flush=True)
        try:
            entry["columns"], entry["preview"] = _preview(con, target)
        except duckdb.Error as exc:
            raise PipelineError(f"output {x['name']}: written, but cannot be read back: {exc}") from exc
        written.append(entry)
    result: dict[str, Any] = {"outputs": written, "inputs": [x["dataset"]["address"] for x, _ in inputs]}
    if not outputs and pipeline["steps"]:
        last = pipeline["steps"][-1]["name"]
        try:
            rel = con.sql(f"SELECT * FROM {q(last)} LIMIT {PREVIEW_ROWS}")
            columns = [[name, str(kind)] for name, kind in zip(rel.columns, rel.types, strict=True)]
            rows = [[_jsonable(v) for v in row] for row in rel.fetchall()]
        except duckdb.Error as exc:
            raise PipelineError(f"step {last}: {exc}") from exc
        result["query"] = {"step": last, "columns": columns, "preview": rows}  # a query with no output
    con.close()
    return result


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


def main(argv: list[str]) -> int:
    spec_path = Path(argv[0])
    spec = json.loads(spec_path.read_text())
    result_path = Path(spec["result_path"])
    try:
        result = run_pipeline(spec)
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
