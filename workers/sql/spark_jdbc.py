"""PostgreSQL depots on Spark: tables read and written by Spark's JDBC source and the PostgreSQL JDBC driver.

An input is read by Spark straight from its table. An output is written by Spark into a staging table of its
own, then put in place in one transaction on the driver's side (psycopg): an ``overwrite`` drops the old table
and renames the staging one, an ``append`` copies its rows across; readers see the old table or the new one.
The password goes to Spark as a JDBC option only: never in the URL, the Spark configuration or a message.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from psycopg import Error as PostgresError
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from workers.sql.datasets import PipelineError, Target
from workers.sql.postgres import PostgresTable

__all__ = ["JdbcTable", "jdbc_connection", "jdbc_target"]

DEFAULT_PORT = "5432"
# The driver's class, as queue_core.services.spark looks for it in the jars (the child imports no queue_core).
POSTGRES_DRIVER_CLASS = "org.postgresql.Driver"
# libpq connection parameters and the PostgreSQL JDBC driver's names for them; any other is refused, named.
_PROPERTIES = {
    "user": "user",
    "sslmode": "sslmode",
    "sslrootcert": "sslrootcert",
    "sslcert": "sslcert",
    "sslkey": "sslkey",
    "application_name": "ApplicationName",
    "connect_timeout": "connectTimeout",
    "options": "options",
}
_ADDRESS = {"host", "hostaddr", "port", "dbname"}
_PY4J_PREAMBLE = "An error occurred while calling"
MAX_MESSAGE = 2000


def jdbc_connection(dsn: str, depot: str) -> tuple[str, dict[str, str]]:
    """The JDBC URL and connection properties a libpq DSN says (no password: that goes as its own option)."""
    parts = {k: v for k, v in conninfo_to_dict(dsn).items() if v not in (None, "")}
    unknown = sorted(set(parts) - _ADDRESS - set(_PROPERTIES) - {"password"})
    if unknown:
        named = ", ".join(unknown)
        raise PipelineError(f"depot {depot}: Spark's JDBC driver has no counterpart for {named} in its DSN")
    hosts = str(parts.get("hostaddr") or parts.get("host") or "localhost").split(",")
    if any(host.startswith("/") or host.startswith("@") for host in hosts):
        raise PipelineError(f"depot {depot}: its DSN names a Unix socket; Spark reaches PostgreSQL over TCP only")
    ports = str(parts.get("port") or DEFAULT_PORT).split(",")
    ports = ports * len(hosts) if len(ports) == 1 else ports
    netloc = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in zip(hosts, ports, strict=False))
    database = quote(str(parts.get("dbname") or parts.get("user") or ""), safe="")
    properties = {_PROPERTIES[k]: str(v) for k, v in parts.items() if k in _PROPERTIES}
    return f"jdbc:postgresql://{netloc}/{database}", properties


def _quoted(*names: str) -> str:
    """A table name as Spark puts it into SQL text: each part in double quotes."""
    return ".".join('"' + name.replace('"', '""') + '"' for name in names)


class JdbcTable(PostgresTable):
    """One table in a postgres depot, read and written by Spark (``spark``, given once the session is up)."""

    def __init__(self, config: dict[str, Any], address: dict[str, Any], password: str | None) -> None:
        super().__init__(config, address, password)
        self.url, self.properties = jdbc_connection(self.dsn, address["depot"])
        self.spark: Any = None

    def said(self, exc: BaseException) -> str:
        """An error's first telling line (not py4j's "An error occurred while calling ..."), the password
        blanked should a driver ever quote it."""
        lines = [line.strip().lstrip(": ") for line in str(exc).strip().splitlines()]
        lines = [line for line in lines if line and not line.startswith(_PY4J_PREAMBLE)]
        text = lines[0][:MAX_MESSAGE] if lines else type(exc).__name__
        return text.replace(self.password, "***") if self.password else text

    def _options(self, table: str) -> dict[str, str]:
        options = {"url": self.url, "driver": POSTGRES_DRIVER_CLASS, "dbtable": _quoted(self.schema, table)}
        options.update(self.properties)
        if self.password:
            options["password"] = self.password
        return options

    def read(self) -> Any:
        """The table as a Spark DataFrame."""
        try:
            if not self.exists():
                raise PipelineError(f"{self.address}: no table {self.schema}.{self.name}")
        except PostgresError as exc:
            raise PipelineError(f"{self.address}: PostgreSQL cannot be read: {self.said(exc)}") from None
        try:
            return self.spark.read.format("jdbc").options(**self._options(self.name)).load()  # reads its schema
        except Exception as exc:  # py4j's and Spark's errors have no common root worth importing here
            raise PipelineError(f"{self.address}: PostgreSQL cannot be read: {self.said(exc)}") from None

    def write_view(self, view: str, mode: str) -> int:
        """Write Spark's view ``view`` to the table as ``mode`` says; the rows written."""
        staging = f"_jobledger_{uuid.uuid4().hex[:16]}"
        conn = self.connection()
        try:
            with conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            conn.commit()
            self.spark.table(view).write.format("jdbc").options(**self._options(staging)).mode("errorifexists").save()
            return self._put_in_place(staging, mode)
        except Exception as exc:
            self._drop(staging)
            if isinstance(exc, PipelineError):
                raise
            raise PipelineError(f"{self.address}: PostgreSQL cannot be written: {self.said(exc)}") from None

    def _put_in_place(self, staging: str, mode: str) -> int:
        """In one transaction: the staging table renamed over the table, or its rows appended to it."""
        conn = self.connection()
        target = sql.SQL(".").join([sql.Identifier(self.schema), sql.Identifier(staging)])
        try:
            with conn.cursor() as cur:
                exists = bool(self._names(cur, self.name))
                if mode == "append" and exists:
                    names = sql.SQL(", ").join(sql.Identifier(name) for name in self._names(cur, staging))
                    cur.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
                        self.qualified, names, names, target))  # fmt: skip
                    rows = cur.rowcount
                    cur.execute(sql.SQL("DROP TABLE {}").format(target))
                else:
                    cur.execute(sql.SQL("SELECT count(*) FROM {}").format(target))
                    found = cur.fetchone()
                    rows = int(found[0]) if found else 0
                    self._swap_in(cur, target, exists, mode)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return max(rows, 0)

    def _names(self, cur: Any, table: str) -> list[str]:
        """The column names of ``table`` in the schema, in order; empty when there is no such table."""
        cur.execute(
            "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (self.schema, table),
        )
        return [name for (name,) in cur.fetchall()]

    def _drop(self, staging: str) -> None:
        """Drop the staging table after a failed write (best effort: the server may be what failed)."""
        conn = self.connection()
        try:
            conn.rollback()
            with conn.cursor() as cur:
                target = sql.SQL(".").join([sql.Identifier(self.schema), sql.Identifier(staging)])
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target))
            conn.commit()
        except PostgresError:
            pass


def jdbc_target(depot: dict[str, Any], address: dict[str, Any], password: str | None) -> Target:
    """A PostgreSQL dataset Spark reads or writes over JDBC; its existence and preview asked through psycopg."""
    table = JdbcTable(depot["config"], address, password)
    return Target("table", pg=table, jdbc=table)
