"""A ``.sql`` file as a SQL job: its statements in order in the locked-down session, only the kinds allowed."""

from __future__ import annotations

import re
from typing import Any

import duckdb

from workers.sql.datasets import PREVIEW_ROWS, PipelineError, first_rows, jsonable

__all__ = ["run_script"]


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
                columns, rows = first_rows(con, f"({query}\n)")  # a trailing comment must not eat the ")"
            else:
                cursor = con.execute(query)
                columns = [[d[0], str(d[1])] for d in cursor.description or []]
                rows = [[jsonable(v) for v in row] for row in cursor.fetchmany(PREVIEW_ROWS)] if columns else []
        except duckdb.Error as exc:
            raise PipelineError(f"{where}: {exc}") from exc
    return {"statement": len(statements), "columns": columns, "preview": rows}
