"""Removing a pre-run's scratch namespace from each depot it wrote to: a folder, an S3 prefix, a schema."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from queue_core.specs.preruns import scratch_folder, scratch_prefix, scratch_schema

__all__ = ["remove_scratch"]

PasswordOf = Callable[[str], str | None]


def _local(config: Mapping[str, Any], prerun: str) -> None:
    shutil.rmtree(Path(scratch_folder(config["path"], prerun)), ignore_errors=True)


def _s3(config: Mapping[str, Any], prerun: str) -> None:
    import boto3

    client = boto3.client("s3", region_name=config.get("region"), endpoint_url=config.get("endpoint_url"))
    prefix = scratch_prefix(config.get("prefix") or "", prerun) + "/"
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=config["bucket"], Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=config["bucket"], Delete={"Objects": keys, "Quiet": True})


def _duckdb(config: Mapping[str, Any], prerun: str) -> None:
    import duckdb

    if not Path(config["path"]).exists():
        return
    with duckdb.connect(config["path"]) as con:
        con.execute(f'DROP SCHEMA IF EXISTS "{scratch_schema(prerun)}" CASCADE')


def _postgres(config: Mapping[str, Any], prerun: str, password: str | None) -> None:
    import psycopg
    from psycopg import sql

    extra: dict[str, Any] = {"password": password} if password else {}
    with psycopg.connect(config["dsn"], connect_timeout=10, autocommit=True, **extra) as con:
        con.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(scratch_schema(prerun))))


def remove_scratch(depot: Mapping[str, Any], prerun: str, password_of: PasswordOf) -> None:
    """Remove pre-run ``prerun``'s namespace from ``depot``; whatever the depot raises is the caller's to say."""
    kind, config = depot["type"], depot["config"]
    if kind == "local":
        _local(config, prerun)
    elif kind == "s3":
        _s3(config, prerun)
    elif kind == "duckdb":
        _duckdb(config, prerun)
    else:
        secret = config.get("password_secret")
        _postgres(config, prerun, password_of(secret) if secret else None)
