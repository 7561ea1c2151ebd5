"""Depot options (a local folder, an S3 prefix, a DuckDB file, a PostgreSQL database), checked and normalized."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from queue_core.errors import InvalidInput, Remedy
from queue_core.specs import checks

__all__ = ["DEPOT_TYPES", "FILE_DEPOTS", "IDENTIFIER", "WAREHOUSE_DEPOTS", "check_identifier", "depot_config"]

DEPOT_TYPES = ("local", "s3", "duckdb", "postgres")

FILE_DEPOTS = frozenset({"local", "s3"})

WAREHOUSE_DEPOTS = frozenset({"duckdb", "postgres"})

# Depot, collection, dataset and view names: they end up inside SQL, always quoted, and still this strict.
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,62}")


def check_identifier(value: Any, field: str, what: str = "name") -> str:
    """A name safe to quote into SQL, or ``InvalidInput`` (``invalid_dataset_name`` for datasets)."""
    if not isinstance(value, str) or not IDENTIFIER.fullmatch(value):
        shown = repr(value) if isinstance(value, str) and len(value) <= 140 else "the value"
        code = " (invalid_dataset_name)" if what == "dataset" else ""
        raise InvalidInput(
            f"{shown} is not a valid {what} (a letter or '_', then letters, digits, '_'; at most 63){code}", field
        )
    return value


def _path(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value or "\x00" in value or "'" in value:
        raise InvalidInput("must be a path without NUL bytes or quotes", field)
    return str(Path(value).expanduser().resolve())


def depot_config(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """The stored configuration of a depot of ``kind`` from its options, or ``InvalidInput``."""
    given = {k: v for k, v in options.items() if v is not None}
    allowed = {
        "local": {"path"},
        "duckdb": {"path"},
        "s3": {"bucket", "prefix", "region", "endpoint_url"},
        "postgres": {"dsn", "password_secret"},
    }
    checks.choice(kind, DEPOT_TYPES, "type", "depot type")
    for key in given:
        if key not in allowed[kind]:
            raise InvalidInput(f"does not apply to a {kind} depot", key)
    if kind in ("local", "duckdb"):
        return {"path": _path(given.get("path"), "path")}
    if kind == "postgres":
        return _postgres_config(given.get("dsn"), given.get("password_secret"))
    bucket = given.get("bucket")
    if not isinstance(bucket, str) or not _BUCKET.fullmatch(bucket):
        raise InvalidInput(f"{bucket!r} is not an S3 bucket name", "bucket")
    prefix = given.get("prefix", "")
    if not isinstance(prefix, str) or ".." in prefix.split("/") or prefix.startswith("/"):
        raise InvalidInput("must be a relative key prefix", "prefix")
    region = given.get("region")
    if region is not None:
        checks.region(region, "region")
    endpoint = given.get("endpoint_url")
    if endpoint is not None:
        checks.endpoint_url(endpoint, "endpoint_url")
    return {"bucket": bucket, "prefix": prefix.strip("/"), "region": region, "endpoint_url": endpoint}


def _postgres_config(dsn: Any, password_secret: Any) -> dict[str, Any]:
    """A DSN without a password in it, and the name of the secret holding the password (if any)."""
    from psycopg import Error as PsycopgError  # here: only a postgres depot pays for importing it
    from psycopg.conninfo import conninfo_to_dict

    if not isinstance(dsn, str) or not dsn.strip() or "\x00" in dsn or len(dsn) > 4096:
        raise InvalidInput("is required: a libpq connection string or a postgresql:// URI", "dsn")
    try:
        parts = conninfo_to_dict(dsn)
    except PsycopgError:
        # libpq's message can quote the string back, password and all: it is not shown.
        raise InvalidInput("is not a PostgreSQL DSN (key=value pairs, or a postgresql:// URI)", "dsn") from None
    if parts.get("password"):
        raise InvalidInput(
            "must not hold a password: store it as a secret and name that secret in password_secret",
            "dsn",
            remedy=Remedy.PASSWORD_SECRET,
        )
    if password_secret is not None:
        checks.name(password_secret, "password_secret")
    return {"dsn": dsn.strip(), "password_secret": password_secret}
