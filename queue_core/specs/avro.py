"""Avro record schemas (``.avsc``) as DuckDB column types, for typing a pipeline input's columns."""

from __future__ import annotations

from typing import Any

import orjson

from queue_core.errors import InvalidInput

__all__ = ["avro_columns"]

_PRIMITIVES = {
    "int": "INTEGER",
    "long": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "string": "VARCHAR",
    "boolean": "BOOLEAN",
    "bytes": "BLOB",
}
_LOGICAL = {("int", "date"): "DATE", ("long", "timestamp-millis"): "TIMESTAMP"}


def _type(kind: Any, where: str) -> tuple[str, bool]:
    """The DuckDB type of one Avro field type and whether it may be null."""
    if isinstance(kind, list):
        others = [k for k in kind if k != "null"]
        if len(others) != 1 or len(kind) != 2:
            raise InvalidInput("only unions of null and one type are supported", where)
        return _type(others[0], where)[0], True
    if isinstance(kind, dict):
        logical = _LOGICAL.get((kind.get("type"), kind.get("logicalType")))  # type: ignore[arg-type]
        if logical:
            return logical, False
        return _type(kind.get("type"), where)
    if isinstance(kind, str) and kind in _PRIMITIVES:
        return _PRIMITIVES[kind], False
    raise InvalidInput(f"unsupported Avro type {kind!r}", where)


def avro_columns(text: str | bytes, where: str = "schemaPath") -> list[tuple[str, str, bool]]:
    """Each field's name, DuckDB type and nullability; ``InvalidInput`` when this is not an Avro record schema."""
    try:
        schema = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"is not valid Avro (not JSON: {exc})", where) from exc
    if not isinstance(schema, dict) or schema.get("type") != "record" or not isinstance(schema.get("fields"), list):
        raise InvalidInput("is not valid Avro: a record schema with fields is required", where)
    columns = []
    for i, field in enumerate(schema["fields"]):
        if not isinstance(field, dict) or not isinstance(field.get("name"), str) or not field["name"]:
            raise InvalidInput(f"is not valid Avro: field {i} has no name", where)
        kind, nullable = _type(field.get("type"), f"{where} field {field['name']}")
        columns.append((field["name"], kind, nullable))
    if not columns:
        raise InvalidInput("is not valid Avro: the record has no fields", where)
    return columns
