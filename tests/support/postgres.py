"""The real PostgreSQL server on this machine (127.0.0.1:5432, trust auth), and a schema of a test's own on it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

SERVER = "host=127.0.0.1 port=5432 dbname=test connect_timeout=3"


def server_dsn() -> str:
    """A DSN that connects, or pytest.skip with why not (printed by -ra)."""
    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")
    problems = []
    for user in ("postgres", "root"):
        dsn = f"{SERVER} user={user}"
        try:
            psycopg.connect(dsn).close()
            return dsn
        except psycopg.Error as exc:
            problems.append(f"{user}: {str(exc).strip().splitlines()[0]}")
    pytest.skip(f"no PostgreSQL server reachable at 127.0.0.1:5432 ({'; '.join(problems)})")


@contextmanager
def own_schema() -> Iterator[tuple[str, str, Any]]:
    """(DSN, a schema of this test's own, an autocommit connection); the schema is dropped afterwards."""
    import psycopg
    from psycopg import sql

    dsn = server_dsn()
    schema = f"jl_test_{uuid.uuid4().hex[:12]}"
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield dsn, schema, conn
    finally:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        conn.close()
