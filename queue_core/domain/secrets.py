"""Secrets in specs: the aggregates of secret names and of the secret key, and the names a spec references."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_SECRET_BYTES", "SECRET_KEY_AGGREGATE", "secret_aggregate", "secret_refs"]

MAX_SECRET_BYTES = 64 * 1024
# The aggregate recording key rotations (ids only): not ``secret:...``, so no secret name can be it.
SECRET_KEY_AGGREGATE = "secret-key"


def secret_aggregate(name: str) -> str:
    """The aggregate recording the history of one secret name (never its value)."""
    return f"secret:{name}"


def secret_refs(value: Any) -> list[str]:
    """The names of every ``{"secret": NAME}`` reference inside a spec value, in document order.

    An explicit stack rather than recursion: a spec's nesting is the user's to choose.
    """
    found: list[str] = []
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, Mapping):
            if set(item) == {"secret"} and isinstance(item["secret"], str):
                found.append(item["secret"])
            else:
                pending.extend(reversed(list(item.values())))
        elif isinstance(item, list | tuple):
            pending.extend(reversed(item))
    return found
