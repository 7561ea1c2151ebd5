"""Parquet files written and read through DuckDB: the archive's segments and the cold tier's batches.

DuckDB is imported only here, and only when a file is written or read, so no command pays for it unless it
reaches the archive or the cold tier. A file is written from a JSON-lines staging copy and renamed into
place once complete.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import orjson

from queue_core.errors import DamagedFile

__all__ = ["literal", "merge_parquet", "parquet_bytes", "query", "rows_of", "write_parquet"]

Columns = dict[str, str]  # name -> DuckDB type
# Rows per row group: small enough that a read of one run's rows skips the others' groups by their
# statistics (12 ms for one run in 90,000 events with DuckDB's default 122,880, 2 ms with this).
ROW_GROUP_ROWS = 10_000


def literal(path: Path | str) -> str:
    """A path as a SQL string literal (DuckDB takes no parameter where a file name goes)."""
    return "'" + str(path).replace("'", "''") + "'"


def write_parquet(path: Path, columns: Columns, rows: list[dict[str, Any]], order: str = "") -> None:
    """Write ``rows`` (dicts with the ``columns``) as the Parquet file ``path``, atomically and durably; sorted
    by ``order`` (SQL), if given, so that reads by those columns skip the row groups they do not need."""
    import duckdb

    staging = path.with_name(path.name + ".jsonl")
    partial = path.with_name(path.name + ".partial")
    with open(staging, "wb") as out:
        for row in rows:
            out.write(orjson.dumps(row) + b"\n")
    types = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in columns.items()) + "}"
    source = f"read_json({literal(staging)}, format = 'newline_delimited', columns = {types})"
    with contextlib.closing(duckdb.connect()) as con:
        if rows:
            sort = f" ORDER BY {order}" if order else ""
            options = f"FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS}"
            con.execute(f"COPY (SELECT * FROM {source}{sort}) TO {literal(partial)} ({options})")
        else:
            fields = ", ".join(f"CAST(NULL AS {kind}) AS {name}" for name, kind in columns.items())
            con.execute(f"COPY (SELECT {fields} LIMIT 0) TO {literal(partial)} (FORMAT parquet)")
    with open(partial, "rb") as written:
        os.fsync(written.fileno())
    os.replace(partial, path)
    staging.unlink()


def merge_parquet(path: Path, files: list[str], order: str) -> int:
    """Write the rows of ``files`` (of the same columns) as one Parquet file ``path``, sorted by ``order``,
    atomically and durably; returns how many rows it holds."""
    import duckdb

    partial = path.with_name(path.name + ".partial")
    listed = ", ".join(literal(f) for f in files)
    options = f"FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS}"
    with contextlib.closing(duckdb.connect()) as con:
        con.execute(f"COPY (SELECT * FROM read_parquet([{listed}]) ORDER BY {order}) TO {literal(partial)} ({options})")
        row = con.execute(f"SELECT count(*) FROM read_parquet({literal(partial)})").fetchone()
    with open(partial, "rb") as written:
        os.fsync(written.fileno())
    os.replace(partial, path)
    return int(row[0]) if row else 0


def parquet_bytes(columns: Columns, rows: list[dict[str, Any]]) -> bytes:
    """``rows`` as the bytes of a Parquet file (to upload)."""
    with tempfile.TemporaryDirectory(prefix="jobledger-parquet-") as folder:
        path = Path(folder) / "rows.parquet"
        write_parquet(path, columns, rows)
        return path.read_bytes()


def rows_of(body: bytes, select: str, where: str) -> list[tuple[Any, ...]]:
    """The rows ``select`` (a column list) reads from the Parquet file whose bytes are ``body``; ``DamagedFile``
    naming ``where`` when they are not a Parquet file of those columns."""
    with tempfile.TemporaryDirectory(prefix="jobledger-parquet-") as folder:
        path = Path(folder) / "rows.parquet"
        path.write_bytes(body)
        return query(f"SELECT {select} FROM {{files}}", [str(path)], [], where)


def query(sql: str, files: list[str], params: list[Any], where: str) -> list[tuple[Any, ...]]:
    """Run ``sql`` (``{files}`` standing for the files read together) and fetch every row."""
    if not files:
        return []
    import duckdb

    listed = ", ".join(literal(f) for f in files)
    try:
        return _connection().execute(sql.format(files=f"read_parquet([{listed}])"), params).fetchall()
    except duckdb.Error as exc:
        raise DamagedFile(f"{where} cannot be read: {str(exc).splitlines()[0]}") from None


_local = threading.local()
_database: list[Any] = []  # the process's one in-memory DuckDB, opened at the first read
_opening = threading.Lock()


def _connection() -> Any:
    """This thread's cursor on the process's DuckDB: opening a database costs tens of ms, a cursor on it none."""
    cursor = getattr(_local, "cursor", None)
    if cursor is None:
        with _opening:
            if not _database:
                import duckdb

                _database.append(duckdb.connect())
        cursor = _local.cursor = _database[0].cursor()
    return cursor
