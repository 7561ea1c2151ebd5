"""Avro schemas of pipeline inputs, read from the local folder or S3 prefix of their depot and checked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from queue_core.errors import InvalidInput
from queue_core.specs.avro import avro_columns
from queue_core.specs.depots import FILE_DEPOTS
from queue_core.specs.pipelines import local_path, s3_key

__all__ = ["check_schemas", "read_schema"]

MAX_SCHEMA_BYTES = 1024 * 1024


def read_schema(depot: Mapping[str, Any], address: Mapping[str, Any], where: str) -> list[tuple[str, str, bool]]:
    """The columns of the Avro schema file an address names in a local or S3 depot, or ``InvalidInput``."""
    if depot["type"] == "local":
        try:
            text = local_path(depot, address).read_bytes()
        except OSError as exc:
            raise InvalidInput(f"{address['address']} cannot be read: {exc.strerror}", where) from exc
        return avro_columns(text, where)
    import boto3  # here: only an S3 schema pays for importing it
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    config = depot["config"]
    s3 = boto3.client(
        "s3",
        region_name=config.get("region"),
        endpoint_url=config.get("endpoint_url"),
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=10, read_timeout=30),
    )
    key = s3_key(config, address)
    try:
        text = s3.get_object(Bucket=config["bucket"], Key=key)["Body"].read(MAX_SCHEMA_BYTES + 1)
    except (BotoCoreError, ClientError) as exc:
        shown = f"{address['address']} (s3://{config['bucket']}/{key})"
        raise InvalidInput(f"{shown} cannot be read: {exc}", where) from exc
    if len(text) > MAX_SCHEMA_BYTES:
        raise InvalidInput(f"{address['address']} is larger than {MAX_SCHEMA_BYTES} bytes", where)
    return avro_columns(text, where)


def check_schemas(pipeline: Mapping[str, Any], depots: Mapping[str, Mapping[str, Any]]) -> None:
    """``InvalidInput`` when an input's Avro schema (in a local or S3 depot) is missing or is not valid Avro."""
    for i, spec in enumerate(pipeline["inputs"]):
        schema = spec["schemaPath"]
        depot = depots.get(schema["depot"]) if schema else None
        if schema is None or depot is None or depot["type"] not in FILE_DEPOTS:
            continue
        field = f"config.pipeline.inputs[{i}].schemaPath"
        if spec["format"] != "csv":
            raise InvalidInput("types csv inputs only; parquet and json carry their own types", field)
        read_schema(depot, schema, field)
