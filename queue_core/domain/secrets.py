"""Secrets in specs: the aggregate of a secret's name, and the names a spec references."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_SECRET_BYTES", "secret_aggregate", "secret_refs"]

MAX_SECRET_BYTES = 64 * 1024


def secret_aggregate(name: str) -> str:
    """The aggregate recording the history of one secret name (never its value)."""
    return f"secret:{name}"


def secret_refs(value: Any) -> list[str]:
    """The names of every ``{"secret": NAME}`` reference inside a spec value."""
    if isinstance(value, Mapping):
        if set(value) == {"secret"} and isinstance(value["secret"], str):
            return [value["secret"]]
        return [name for v in value.values() for name in secret_refs(v)]
    if isinstance(value, list | tuple):
        return [name for v in value for name in secret_refs(v)]
    return []
