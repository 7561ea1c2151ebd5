"""The SQL job runner, run as the attempt's child: inputs as views, then steps as views or a ``.sql`` file's
statements, then outputs written atomically."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

# Run as a script by path (not ``-m workers.sql.runner``, which would run the attempt machinery's imports
# first); its siblings come in as ``workers.*``, whose package imports nothing until asked.
from workers.sql.datasets import (
    PipelineError,
    Target,
    dataset_exists,
    first_rows,
    lit,
    preview,
    q,
    resolve,
    selectable,
    write,
)
from workers.sql.script import run_script

__all__ = ["PipelineError", "lock_down", "main", "run_pipeline"]

MAX_MESSAGE = 2000
QUIET_LEVELS = frozenset({"WARN", "WARNING", "ERROR"})  # logLevel: only warnings and errors are printed
WAIT = "--wait"

LOCK_WAIT_SECONDS = 60.0
FIRST_PAUSE = 0.05
# DuckDB: 'Could not set lock on file "...": Conflicting lock is held in /usr/bin/python3 (PID 123). See ...'
_LOCK_HELD = re.compile(r"Conflicting lock is held in (.+?)(?:\. See|$)")


def lock_down(con: duckdb.DuckDBPyConnection, directories: list[str], paths: list[str]) -> None:
    """Restrict file access to the declared datasets and the run folder, then lock the configuration."""
    con.execute(f"SET allowed_directories=[{', '.join(lit(d.rstrip('/') + '/') for d in directories)}]")
    if paths:
        con.execute(f"SET allowed_paths=[{', '.join(lit(p) for p in paths)}]")
    con.execute("SET enable_external_access=false")
    con.execute("SET lock_configuration=true")


def run_pipeline(spec: dict[str, Any], passwords: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one pipeline (its steps, or a ``.sql`` script) in a fresh DuckDB session; the result says
    what each output wrote, and what the last step (with no output) or the script's last statement returned.

    ``passwords``: each postgres depot's password, by depot name.
    """
    pipeline, depots, run_dir = spec["pipeline"], spec["depots"], Path(spec["run_dir"])
    script: str | None = spec.get("script")
    aliases: dict[str, str] = {}
    stage = run_dir / "stage"
    inputs = [(x, resolve(depots, x, aliases, stage, passwords=passwords)) for x in pipeline["inputs"]]
    outputs = [(x, resolve(depots, x, aliases, stage, True, passwords)) for x in pipeline["outputs"]]
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
        source = selectable(target)
        try:
            con.execute(f"CREATE VIEW {q(x['name'])} AS SELECT * FROM {source}")
        except duckdb.Error as exc:
            raise PipelineError(f"input {x['name']}: {exc}") from exc
    last: dict[str, Any] | None = None
    if script is not None:
        last = run_script(con, script, pipeline["explain"] or pipeline["logLevel"] == "DEBUG")
        for depot_name, alias in aliases.items():
            if alias in written_to:
                if alias in input_aliases:
                    con.execute(f"DETACH {q(alias)}")
                _attach(con, depots[depot_name], depot_name, alias, False)
    for step in pipeline["steps"]:
        _run_step(con, step, pipeline["explain"], pipeline["logLevel"])
    quiet = pipeline["logLevel"] in QUIET_LEVELS
    written = [_output(con, x, target, temps[x["name"]], inputs, script is not None, quiet) for x, target in outputs]
    result: dict[str, Any] = {"outputs": written, "inputs": [x["dataset"]["address"] for x, _ in inputs]}
    if spec.get("sync"):  # a DATA_SYNC: the highest watermark it moved, where the next incremental one starts
        result["sync"] = _watermark(con, spec["sync"]["watermark"], written[0])
    if last is not None:
        result["query"] = last  # the script's last statement
    elif not outputs and pipeline["steps"]:
        step = pipeline["steps"][-1]["name"]
        try:
            columns, rows = first_rows(con, q(step))
        except duckdb.Error as exc:
            raise PipelineError(f"step {step}: {exc}") from exc
        result["query"] = {"step": step, "columns": columns, "preview": rows}  # a query with no output
    con.close()
    return result


def _watermark(con: duckdb.DuckDBPyConnection, column: str, written: dict[str, Any]) -> dict[str, Any]:
    """The highest ``column`` among the rows a sync wrote (its text and DuckDB type; None: no row), and their count."""
    try:
        found = con.execute(
            f"SELECT CAST(max({q(column)}) AS VARCHAR), typeof(max({q(column)})) FROM {q(written['name'])}"
        ).fetchone()
    except duckdb.Error as exc:
        raise PipelineError(f"sync: watermark column {column}: {exc}") from exc
    value, kind = found if found is not None else (None, None)
    if not written["written"]:
        value = None  # the target existed and saveMode is ignore: nothing moved
    return {"column": column, "value": value, "type": kind, "rows": written["rows"] if written["written"] else 0}


def _attach(con: duckdb.DuckDBPyConnection, depot: dict[str, Any], name: str, alias: str, read_only: bool) -> None:
    """Attach a duckdb depot's warehouse file, waiting while another process holds its lock.

    DuckDB lets one process at a time write a file: another run (or a person's session) may hold it.
    The attach is tried again with a growing pause for up to ``LOCK_WAIT_SECONDS`` (the attempt's own
    timeout still applies); then the run fails naming the holder, as DuckDB names it.
    """
    mode = " (READ_ONLY)" if read_only else ""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    pause = FIRST_PAUSE
    while True:
        try:
            con.execute(f"ATTACH {lit(depot['config']['path'])} AS {q(alias)}{mode}")
            return
        except duckdb.Error as exc:
            held = _LOCK_HELD.search(str(exc))
            if held is None:
                raise PipelineError(f"depot {name}: cannot open its warehouse: {exc}") from exc
            if time.monotonic() >= deadline:
                raise PipelineError(
                    f"depot {name}: its warehouse file is locked by another process ({held.group(1)}) "
                    f"and stayed so for {LOCK_WAIT_SECONDS:g} s"
                ) from exc
            if pause == FIRST_PAUSE:
                print(
                    f"depot {name}: its warehouse file is locked by another process ({held.group(1)}); "
                    f"waiting up to {LOCK_WAIT_SECONDS:g} s",
                    file=sys.stderr,
                    flush=True,
                )
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


def _output(
    con: duckdb.DuckDBPyConnection,
    x: dict[str, Any],
    target: Target,
    temp: Path | None,
    inputs: list[tuple[dict[str, Any], Target]],
    script: bool,
    quiet: bool = False,
) -> dict[str, Any]:
    """Write one output as its save mode says; what was written, with its columns and first rows.

    ``quiet`` (``logLevel`` WARN or ERROR): only warnings are printed, not what was written."""
    if script:
        try:
            con.execute(f"SELECT * FROM {q(x['name'])} LIMIT 0")
        except duckdb.Error:
            raise PipelineError(f"output {x['name']}: the script created no view or table {x['name']}") from None
    exists = dataset_exists(con, target)
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
    where = x["dataset"]["address"]
    if x.get("scratch"):  # a pre-run's output: written to its depot's scratch namespace instead
        entry["scratch"] = x["scratch"]
        where = f"{x['scratch']} (pre-run scratch of {where})"
    bucket = (x["options"].get("bigquery") or {}).get("temporaryBucket")
    if bucket is not None:  # a BigQuery load's staging bucket: a DuckDB table needs none; said, not dropped
        print(f"warning: output {x['name']}: bigquery.temporaryBucket is ignored (a DuckDB table stands in "
              "for BigQuery here; nothing is staged)", file=sys.stderr, flush=True)  # fmt: skip
    if entry["written"]:
        try:
            entry["rows"] = write(con, x["name"], target, mode, temp)
        except duckdb.Error as exc:
            said = f"output {x['name']}" if script else f"output {x['name']} (step {x['name']})"
            raise PipelineError(_input_error(exc, inputs) or f"{said}: {exc}") from exc
        if not quiet:
            print(f"output {x['name']}: {entry['rows']} rows written to {where} ({mode})", flush=True)
    elif not quiet:
        print(f"output {x['name']}: {where} exists; ignored", flush=True)
    try:
        entry["columns"], entry["preview"] = preview(con, target)
    except duckdb.Error as exc:
        raise PipelineError(f"output {x['name']}: written, but cannot be read back: {exc}") from exc
    return entry


def _input_error(exc: duckdb.Error, inputs: list[tuple[dict[str, Any], Target]]) -> str | None:
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


def _run_step(con: duckdb.DuckDBPyConnection, step: dict[str, str], explain: bool, level: str = "INFO") -> None:
    """Create the step's view from exactly one SELECT; anything else (SET, ATTACH, COPY, ...) is refused.

    ``explain`` prints the step's plan; ``level`` DEBUG its SQL and its plan, WARN and ERROR neither."""
    name = step["name"]
    try:
        statements = con.extract_statements(step["sql"])
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            kinds = ", ".join(s.type.name for s in statements) or "nothing"
            raise PipelineError(f"step {name}: must be one SELECT query, not {kinds}")
        query = statements[0].query.rstrip().rstrip(";")
        con.execute(f"CREATE VIEW {q(name)} AS {query}")
        if level == "DEBUG":
            print(f"step {name}: {' '.join(query.split())}", flush=True)
        if (explain or level == "DEBUG") and level not in QUIET_LEVELS:
            for _kind, plan in con.execute(f"EXPLAIN SELECT * FROM {q(name)}").fetchall():
                print(f"plan of step {name}:\n{plan}", flush=True)
    except duckdb.Error as exc:
        raise PipelineError(f"step {name}: {exc}") from exc


def main(argv: list[str]) -> int:
    return serve(argv, run_pipeline)


def serve(argv: list[str], run: Callable[[dict[str, Any], dict[str, str]], dict[str, Any]]) -> int:
    """Run the pipeline spec named by ``argv[0]`` with ``run`` (an engine's) and write its result file: the
    result, or ``{"error": ...}`` in one line (also on stderr) with exit code 1."""
    passwords = {}
    if any(k.startswith("JOBLEDGER_PG_PASSWORD_") for k in os.environ):
        from workers.sql.postgres import take_passwords

        passwords = take_passwords()
    spec = json.loads(Path(argv[0]).read_text())
    result_path = Path(spec["result_path"])
    try:
        result = run(spec, passwords)
    except (PipelineError, OSError) as exc:
        message = " ".join(str(exc).split())[:MAX_MESSAGE]
        print(message, file=sys.stderr, flush=True)
        result_path.write_text(json.dumps({"error": message}))
        return 1
    staged = result_path.with_suffix(".tmp")
    staged.write_text(json.dumps(result))
    shutil.move(staged, result_path)
    return 0


def wait_then_main() -> int:
    """A spare runner (``runner.py --wait``): DuckDB imported, it reads its attempt (working directory,
    environment, arguments: JSON) from stdin until the worker closes it, becomes that attempt, runs it."""
    request = json.loads(sys.stdin.buffer.read())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    return main(request["argv"])


if __name__ == "__main__":
    sys.exit(wait_then_main() if sys.argv[1:] == [WAIT] else main(sys.argv[1:]))
