"""Logical dates: the date or time a run stands for (a schedule's tick, a business date), checked and compared."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from queue_core.errors import InvalidInput
from queue_core.timefmt import format_time, parse_time

__all__ = ["normalize_logical_date", "same_logical_date"]


def normalize_logical_date(value: Any, field: str = "logical-date") -> str:
    """``YYYY-MM-DD``, or an ISO 8601 time kept in its own offset (``Z`` for UTC; a naive time is UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        return value.isoformat()
    elif isinstance(value, str) and 0 < len(value) <= 64:
        text = value.strip()
        if len(text) == 10:
            try:
                return date.fromisoformat(text).isoformat()
            except ValueError:
                raise InvalidInput(f"{value!r} is not a date YYYY-MM-DD or an ISO 8601 time", field) from None
        try:
            moment = parse_time(text)
        except ValueError:
            raise InvalidInput(f"{value!r} is not a date YYYY-MM-DD or an ISO 8601 time", field) from None
    else:
        raise InvalidInput("must be a date YYYY-MM-DD or an ISO 8601 time", field)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_time(moment)


def _instant(value: str) -> datetime | date:
    if len(value) == 10:
        return date.fromisoformat(value)
    return parse_time(value)


def same_logical_date(a: str | None, b: str | None) -> bool:
    """Whether two normalized logical dates stand for the same day or instant (offsets compared as instants)."""
    if a is None or b is None:
        return False
    if a == b:
        return True
    left, right = _instant(a), _instant(b)
    return type(left) is type(right) and left == right
