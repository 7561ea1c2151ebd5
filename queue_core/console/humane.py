"""Times and durations as people read them: "3 min ago" with the exact time on hover, ``1m 12s``, a chosen zone."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from markupsafe import Markup, escape

from queue_core.errors import InvalidInput
from queue_core.timefmt import parse_utc

__all__ = ["ago", "duration", "elapsed", "exact", "moment", "zone"]

_STEPS = ((86400 * 365, "y"), (86400, "d"), (3600, "h"), (60, "m"), (1, "s"))
_RELATIVE = ((86400, "day"), (3600, "h"), (60, "min"), (1, "s"))
MAX_ZONE = 64


def zone(name: str) -> tzinfo:
    """The time zone ``name`` (an IANA name such as ``Europe/Paris``, or ``UTC``); ``InvalidInput`` naming ``tz``."""
    name = name.strip()
    if not name or name.upper() == "UTC":
        return UTC
    if len(name) > MAX_ZONE or name not in _zones():
        raise InvalidInput(f"{name[:MAX_ZONE]!r} is not a time zone such as Europe/Paris or UTC", "tz")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"{name!r} is not a time zone such as Europe/Paris or UTC", "tz") from None


_ZONES: frozenset[str] | None = None


def _zones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:  # read once: the list of zone files does not change while the console runs
        _ZONES = frozenset(available_timezones())
    return _ZONES


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_utc(text)
    except ValueError:
        return None


def duration(seconds: float | None) -> str:
    """``1m 12s``, ``3h 5m``, ``850ms``: the two largest units, the way a person says it."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    if seconds < 10:
        return f"{seconds:.1f}s"
    left, parts = round(seconds), []
    for size, unit in _STEPS:
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
        if len(parts) == 2 or (parts and not left):
            break
    return " ".join(parts)


def elapsed(start: str | None, end: str | None) -> float | None:
    """Seconds from ``start`` to ``end`` (ISO times), None unless both are there."""
    a, b = _parse(start), _parse(end)
    return (b - a).total_seconds() if a and b else None


def exact(text: str | None, tz: tzinfo = UTC) -> str:
    """The exact time, to the second, in ``tz`` (its abbreviation shown), UTC beside it when ``tz`` is not UTC."""
    when = _parse(text)
    if when is None:
        return ""
    utc = when.strftime("%Y-%m-%d %H:%M:%S UTC")
    if tz is UTC:
        return utc
    local = when.astimezone(tz)
    return f"{local.strftime('%Y-%m-%d %H:%M:%S')} {local.tzname()} ({utc})"


def ago(text: str | None, now: datetime) -> str:
    """How long before ``now`` (or after it: "in 5 min"), in the largest unit that fits."""
    when = _parse(text)
    if when is None:
        return ""
    seconds = (now - when).total_seconds()
    later, seconds = seconds < 0, abs(seconds)
    if seconds < 5:
        return "just now"
    for size, unit in _RELATIVE:
        if seconds >= size:
            count = int(seconds // size)
            label = f"{count} {unit}{'s' if unit == 'day' and count != 1 else ''}"
            return f"in {label}" if later else f"{label} ago"
    return "just now"


def moment(text: str | None, now: datetime, tz: tzinfo = UTC) -> Markup:
    """A ``<time>`` element: relative, with the exact time as its title and its machine form as ``datetime``."""
    if not text or _parse(text) is None:
        return Markup("\u2013" if not text else escape(text))
    return Markup('<time datetime="{0}" title="{1}">{2}</time>').format(text, exact(text, tz), ago(text, now))
