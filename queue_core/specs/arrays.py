"""The size of an array job (a submit's or a workflow task's): 2 to 10,000 children."""

from __future__ import annotations

from typing import Any

from queue_core.errors import InvalidInput

__all__ = ["MAX_ARRAY", "MIN_ARRAY", "check_array_size"]

MIN_ARRAY, MAX_ARRAY = 2, 10_000


def check_array_size(size: Any, field: str = "array") -> int:
    """``size`` as an array job's number of children (2 to 10,000), or ``InvalidInput`` naming ``field``."""
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_ARRAY <= size <= MAX_ARRAY:
        raise InvalidInput(f"must be a whole number from {MIN_ARRAY} to {MAX_ARRAY:,}, not {size!r}", field)
    return size
