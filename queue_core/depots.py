"""Depots: named storage locations (a local folder, an S3 prefix, a DuckDB file, a PostgreSQL database) for datasets."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .aggregates import load_state
from .errors import AlreadyExists, ConcurrencyError, InvalidInput, NotFound
from .events import DepotAdded, NameClaimed, NewEvent, Recorded
from .names import name_aggregate, owner_of
from .store import EventStore

if TYPE_CHECKING:  # the read models import the projections, which import this module
    from .readmodels import ReadModels

__all__ = [
    "DEPOT_KIND",
    "DEPOT_TYPES",
    "FILE_DEPOTS",
    "IDENTIFIER",
    "WAREHOUSE_DEPOTS",
    "add_depot",
    "apply_depot",
    "check_identifier",
    "depot_config",
    "get_depot",
    "list_depots",
]

DEPOT_KIND = "depot"
DEPOT_TYPES = ("local", "s3", "duckdb", "postgres")
FILE_DEPOTS = frozenset({"local", "s3"})
WAREHOUSE_DEPOTS = frozenset({"duckdb", "postgres"})
# Depot, collection, dataset and view names: they end up inside SQL, always quoted, and still this strict.
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,62}")
_REGION = re.compile(r"[a-z0-9-]{1,64}")
_URL = re.compile(r"^https?://[^\s/@]+(/\S*)?$")


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
    if kind not in allowed:
        raise InvalidInput(f"unknown depot type {kind!r}; use one of {', '.join(DEPOT_TYPES)}", "type")
    for key in given:
        if key not in allowed[kind]:
            raise InvalidInput(f"does not apply to a {kind} depot", key.replace("_", "-"))
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
    if region is not None and (not isinstance(region, str) or not _REGION.fullmatch(region)):
        raise InvalidInput("is not a region name such as eu-west-1", "region")
    endpoint = given.get("endpoint_url")
    if endpoint is not None and (not isinstance(endpoint, str) or not _URL.match(endpoint)):
        raise InvalidInput("is not an http(s):// URL without a credential in it", "endpoint-url")
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
            "must not hold a password: store it with `jobledger secret set NAME` and give --password-secret NAME",
            "dsn",
        )
    if password_secret is not None:
        from .spec import check_name

        check_name(password_secret, "password-secret")
    return {"dsn": dsn.strip(), "password_secret": password_secret}


def apply_depot(doc: dict[str, Any] | None, rec: Recorded) -> dict[str, Any] | None:
    """Fold one depot event into the depot's document."""
    event = rec.event
    if not isinstance(event, DepotAdded):
        return doc
    return {
        "id": rec.aggregate,
        "name": event.name,
        "type": event.type,
        "config": dict(event.config),
        "added_at": rec.time,
    }


def _owner(store: EventStore, name: str) -> tuple[str | None, int]:
    return owner_of(store, DEPOT_KIND, name)


def get_depot(store: EventStore, name: str) -> dict[str, Any]:
    """The depot named ``name``; ``NotFound`` when there is none."""
    check_identifier(name, "depot", "depot name")
    owner, _ = _owner(store, name)
    doc = load_state(store, owner, apply_depot)[0] if owner else None
    if doc is None:
        raise NotFound(f"no depot named {name!r}; add it with `jobledger depot add {name} --type ...`")
    return doc


def list_depots(read_models: ReadModels) -> list[dict[str, Any]]:
    """Every depot, by name."""
    read_models.catch_up()
    return sorted((d for d in read_models.all("depots").values() if d), key=lambda d: d["name"])


def add_depot(store: EventStore, name: str, kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """Register a depot; its name is claimed once, so a second add of the same name is refused."""
    check_identifier(name, "depot", "depot name")
    config = depot_config(kind, options)
    owner, name_version = _owner(store, name)
    if owner is not None:
        raise AlreadyExists(f"depot {name!r} already exists")
    depot_id = str(uuid.uuid4())
    name_agg = name_aggregate(DEPOT_KIND, name)
    batch = [
        NewEvent(name_agg, NameClaimed(kind=DEPOT_KIND, name=name, owner=depot_id)),
        NewEvent(depot_id, DepotAdded(name=name, type=kind, config=config)),
    ]
    try:
        recorded = store.append(batch, {name_agg: name_version, depot_id: 0})
    except ConcurrencyError as exc:
        raise AlreadyExists(f"depot {name!r} was just added by another writer") from exc
    doc = apply_depot(None, recorded[-1])
    assert doc is not None
    return doc
