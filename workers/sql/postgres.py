"""PostgreSQL depots for the SQL runner: tables copied in and out of DuckDB as CSV through COPY.

A dataset is table DATASET in schema COLLECTION. An input is copied (``COPY ... TO STDOUT``) into the
run folder before DuckDB is locked down and read with its columns' types; an output is written by
DuckDB into the run folder and copied in (``COPY ... FROM STDIN``) in one transaction. Every
identifier goes through ``psycopg.sql.Identifier``; values are parameters.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

__all__ = ["PASSWORD_ENV_PREFIX", "PostgresTable", "duckdb_type", "postgres_type", "take_passwords"]

# The worker hands the child each depot's password in its environment (never in the spec file, which
# the run's SQL can read); the child takes them out of its environment before DuckDB starts.
PASSWORD_ENV_PREFIX = "JOBLEDGER_PG_PASSWORD_"
CONNECT_TIMEOUT_SECONDS = 10
CHUNK = 1024 * 1024
# Text forms both sides parse: UTC offsets, ISO dates, intervals as '1 day 02:00:00', shortest exact floats.
_SESSION = "-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=1"
_COLUMNS = """
SELECT a.attname, t.typname, a.atttypmod
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
_SIMPLE_TO_DUCKDB = {
    "bool": "BOOLEAN",
    "int2": "SMALLINT",
    "int4": "INTEGER",
    "int8": "BIGINT",
    "float4": "FLOAT",
    "float8": "DOUBLE",
    "date": "DATE",
    "time": "TIME",
    "timestamp": "TIMESTAMP",
    "timestamptz": "TIMESTAMP WITH TIME ZONE",
    "interval": "INTERVAL",
    "uuid": "UUID",
    "bytea": "BLOB",
}
_DUCKDB_TO_POSTGRES = {
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "UTINYINT": "smallint",
    "INTEGER": "integer",
    "USMALLINT": "integer",
    "BIGINT": "bigint",
    "UINTEGER": "bigint",
    "UBIGINT": "numeric(20)",
    "HUGEINT": "numeric(39)",
    "UHUGEINT": "numeric(39)",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "VARCHAR": "text",
    "DATE": "date",
    "TIME": "time",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_S": "timestamp",
    "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "INTERVAL": "interval",
    "UUID": "uuid",
    "BLOB": "bytea",
    "JSON": "jsonb",
}
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


def take_passwords() -> dict[str, str]:
    """Each postgres depot's password, by depot name, removed from this process's environment."""
    found = {k: v for k, v in os.environ.items() if k.startswith(PASSWORD_ENV_PREFIX)}
    for key in found:
        del os.environ[key]
    return {k[len(PASSWORD_ENV_PREFIX) :]: v for k, v in found.items()}


def duckdb_type(typname: str, typmod: int) -> str:
    """The DuckDB type a PostgreSQL column is read as: numeric(p,s) with p <= 38 stays exact, an
    unconstrained numeric is DOUBLE (as DuckDB's own postgres scanner does), anything unknown is VARCHAR."""
    if typname == "numeric":
        if typmod >= 4:
            precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
            if 1 <= precision <= 38 and scale <= precision:
                return f"DECIMAL({precision},{scale})"
        return "DOUBLE"
    return _SIMPLE_TO_DUCKDB.get(typname, "VARCHAR")


def postgres_type(duckdb_name: str) -> str:
    """The PostgreSQL column type a DuckDB column is written as; lists, structs and the like become text."""
    decimal = _DECIMAL.fullmatch(duckdb_name)
    if decimal:
        return f"numeric({decimal.group(1)},{decimal.group(2)})"
    return _DUCKDB_TO_POSTGRES.get(duckdb_name, "text")


class PostgresTable:
    """One table in a postgres depot, reached with the depot's DSN and password."""

    def __init__(self, config: dict[str, Any], address: dict[str, Any], password: str | None) -> None:
        self.dsn = config["dsn"]
        self.password = password
        self.schema = address["collection"]
        self.name = address["dataset"]
        self.address = address["address"]
        self._conn: psycopg.Connection[Any] | None = None

    @property
    def qualified(self) -> sql.Composed:
        return sql.SQL(".").join([sql.Identifier(self.schema), sql.Identifier(self.name)])

    def connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            extra: dict[str, Any] = {"password": self.password} if self.password else {}
            run = os.environ.get("JOBLEDGER_RUN_ID", "")
            given = conninfo_to_dict(self.dsn).get("options")  # the DSN's own options are kept, ours added
            self._conn = psycopg.connect(
                self.dsn,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name=f"jobledger {run}".strip(),
                options=f"{given} {_SESSION}" if given else _SESSION,
                **extra,
            )
        return self._conn

    def columns(self) -> list[tuple[str, str]]:
        """The table's columns as (name, DuckDB type); empty when there is no such table."""
        with self.connection().cursor() as cur:
            cur.execute(_COLUMNS, (self.schema, self.name))
            rows = cur.fetchall()
        self.connection().rollback()  # end the read's transaction: a later write starts its own
        return [(name, duckdb_type(typname, typmod)) for name, typname, typmod in rows]

    def exists(self) -> bool:
        return bool(self.columns())

    def fetch(self, path: Path, after: dict[str, str] | None = None) -> list[tuple[str, str]]:
        """Copy the table into a CSV file; its columns as (name, DuckDB type).

        ``after``: only the rows whose ``column`` is past ``value`` (an incremental sync), PostgreSQL casting
        the value's text to the column's type.
        """
        columns = self.columns()
        if not columns:
            raise LookupError(f"{self.address}: no table {self.schema}.{self.name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = sql.SQL("SELECT * FROM {}").format(self.qualified)
        if after is not None:
            if after["column"] not in {name for name, _ in columns}:
                raise LookupError(f"{self.address}: no column {after['column']} (the sync's watermark)")
            rows += sql.SQL(" WHERE {} > {}").format(sql.Identifier(after["column"]), sql.Literal(after["value"]))
        query = sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER true)").format(rows)
        conn = self.connection()
        with conn.cursor() as cur, path.open("wb") as out, cur.copy(query) as copy:
            for data in copy:
                out.write(data)
        conn.rollback()
        return columns

    def write(self, csv: Path, columns: list[tuple[str, str]], mode: str) -> int:
        """Load the CSV file in one transaction; ``overwrite`` fills a new table and swaps it in.

        Readers see the old table or the new one: the new one is built under a temporary name,
        the old one dropped and the new one renamed in the same transaction, so a run killed
        mid-copy leaves the previous table as it was (the server rolls the transaction back).
        """
        conn = self.connection()
        names = sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns)
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
                cur.execute(_COLUMNS, (self.schema, self.name))
                exists = bool(cur.fetchall())
                staging = None if mode == "append" and exists else f"_jobledger_{uuid.uuid4().hex[:16]}"
                target = self.qualified
                if staging is not None:
                    target = sql.SQL(".").join([sql.Identifier(self.schema), sql.Identifier(staging)])
                    defs = sql.SQL(", ").join(
                        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(postgres_type(kind)))
                        for name, kind in columns
                    )
                    cur.execute(sql.SQL("CREATE TABLE {} ({})").format(target, defs))
                copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, HEADER true)").format(target, names)
                with csv.open("rb") as source, cur.copy(copy_sql) as copy:
                    while data := source.read(CHUNK):
                        copy.write(data)
                rows = cur.rowcount
                if staging is not None:
                    self._swap_in(cur, target, exists, mode)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return max(rows, 0)

    def _swap_in(self, cur: Any, staging: sql.Composable, exists: bool, mode: str) -> None:
        """Within the caller's transaction: the staging table renamed to the table, the old one dropped first
        for ``overwrite``. Without a drop (a new table, errorIfExists) the rename fails if one appeared meanwhile."""
        if exists and mode == "overwrite":
            cur.execute(sql.SQL("DROP TABLE {}").format(self.qualified))
        cur.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(staging, sql.Identifier(self.name)))

    def preview(self, limit: int) -> tuple[list[list[str]], list[list[Any]]]:
        """The table's columns (with the types it is read back as) and its first rows."""
        columns = self.columns()
        with self.connection().cursor() as cur:
            cur.execute(sql.SQL("SELECT * FROM {} LIMIT %s").format(self.qualified), (limit,))
            rows = cur.fetchall()
        self.connection().rollback()
        return [[name, kind] for name, kind in columns], [list(row) for row in rows]
