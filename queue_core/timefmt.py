"""ISO 8601 times as jobledger writes and reads them: ``Z`` for UTC, never ``+00:00``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Literal

__all__ = ["format_time", "format_utc", "parse_duration", "parse_time", "parse_utc", "utc_now"]


_DURATION = re.compile(r"^(\d{1,9})\s*([smhd]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """A duration written as a whole number and a unit (``90s``, ``30m``, ``12h``, ``7d``; seconds if none);
    ``ValueError`` naming the forms otherwise."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ValueError(f"{text.strip()[:40]!r} is not a duration like 90s, 30m, 12h or 7d")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def parse_time(text: str) -> datetime:
    """The time ``text`` says, ``Z`` or ``z`` read as UTC; naive when it has no offset; ``ValueError`` if not ISO."""
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))


def parse_utc(text: str) -> datetime:
    """The aware UTC time ``text`` says; one without an offset is taken as UTC."""
    moment = parse_time(text)
    try:
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:  # the end of time in a far-west zone is past year 9999 in UTC
        raise ValueError(f"{text.strip()!r} is outside the years 1 to 9999 in UTC") from None


def format_utc(moment: datetime, timespec: Literal["seconds", "microseconds"] = "microseconds") -> str:
    """An aware time in UTC: ``2026-11-21T08:00:00.000000Z``, or ``2026-11-21T08:00:00Z`` to the second.

    Both are fixed-width, so the strings sort as the times (a finer part is cut, not rounded).
    """
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def format_time(moment: datetime) -> str:
    """An aware time in its own offset, ``Z`` for UTC; fractions of a second only when there are some."""
    return moment.isoformat().replace("+00:00", "Z")


def utc_now() -> str:
    """The time now: ``format_utc`` of it, to the microsecond."""
    return format_utc(datetime.now(UTC))
