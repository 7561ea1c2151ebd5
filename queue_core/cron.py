"""Cron expressions (five fields and the ``@daily`` family) and their ticks in a time zone, across DST changes.

The ticks of a schedule are wall-clock times in its zone, turned into instants:

- a wall time that does not exist (the hour a spring-forward change skips) is read with the offset
  before the change, as PEP 495 reads it: it moves later by the size of the gap, so a daily 02:30 in
  Europe/Paris fires once that day, at 03:30 CEST; a tick that lands on an instant another tick
  already has is the same tick, so an hourly ``30 * * * *`` fires once at 03:30, not twice;
- a wall time that happens twice (the hour a fall-back change repeats) fires at its first
  occurrence only, unless the hour field is ``*`` (every hour: ``*/15 * * * *``, ``@hourly``), which
  fires in both, because it is about elapsed time; this is cron's (cronie's) rule.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from queue_core.errors import InvalidInput

__all__ = ["CronExpression", "parse_cron", "zone"]

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (name, low, high, names whose index + offset is the value)
_FIELDS = (
    ("minute", 0, 59, (), 0),
    ("hour", 0, 23, (), 0),
    ("day of month", 1, 31, (), 0),
    ("month", 1, 12, _MONTHS, 1),
    ("day of week", 0, 7, _DAYS, 0),
)
MINUTE = timedelta(minutes=1)
# How far a DST change can move wall time against instants (the largest shift in tzdata is 2 hours):
# within this distance of a change the exact search below is used instead of the fast path.
_SHIFT_BOUND = timedelta(hours=4)
# The Gregorian calendar, weekdays included, repeats every 400 years: an expression that matches no day in
# one cycle matches none ever, and one that matches has its next tick within a cycle (a 29 February that
# is a Monday can be 40 years away: 2072 -> 2112).
_CYCLE_DAYS = 146_097


def zone(name: str, field: str = "timezone") -> ZoneInfo:
    """The IANA time zone ``name`` (``Europe/Paris``, ``UTC``), or ``InvalidInput``."""
    if not isinstance(name, str) or not name or len(name) > 64:
        raise InvalidInput("must be an IANA time zone name such as Europe/Paris", field)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r} (an IANA name such as Europe/Paris, or UTC)", field) from None


def _number(text: str, names: tuple[str, ...], offset: int, what: str) -> int:
    lowered = text.lower()
    if lowered in names:
        return names.index(lowered) + offset
    if not text.isdigit():
        raise ValueError(f"{what} field: {text!r} is not a number" + (f" or a name ({names[0]}...)" if names else ""))
    return int(text)


def _field(text: str, spec: tuple[str, int, int, tuple[str, ...], int]) -> tuple[frozenset[int], bool]:
    """The values a field allows, and whether it starts with ``*`` (cron's rule for day-of-month/week)."""
    what, low, high, names, offset = spec
    values: set[int] = set()
    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{what} field: step {step_text!r} is not a whole number of at least 1")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            left, _, right = base.partition("-")
            start, end = _number(left, names, offset, what), _number(right, names, offset, what)
        else:
            start = _number(base, names, offset, what)
            end = high if slash else start  # "5/15" is "5-MAX/15"
        for value in (start, end):
            if not low <= value <= high:
                raise ValueError(f"{what} field: {value} is out of range {low}-{high}")
        if start > end:
            raise ValueError(f"{what} field: range {base!r} runs backwards")
        values.update(range(start, end + 1, step))
    return frozenset(values), text.startswith("*")


def _first_of_next_month(day: date) -> date | None:
    """The first day of the month after ``day``'s; None past the year 9999."""
    if day.month < 12:
        return date(day.year, day.month + 1, 1)
    return date(day.year + 1, 1, 1) if day.year < date.max.year else None


@dataclass(frozen=True)
class CronExpression:
    """A parsed expression in a time zone; ``next_after(instant)`` is its first tick strictly after it."""

    text: str
    zone: ZoneInfo
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    day_star: bool
    weekday_star: bool

    @property
    def every_hour(self) -> bool:
        return len(self.hours) == 24

    # -- wall-clock candidates --------------------------------------------------------------

    def _day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        by_day = day.day in self.days
        by_weekday = (day.weekday() + 1) % 7 in self.weekdays
        if self.day_star or self.weekday_star:
            return by_day and by_weekday
        return by_day or by_weekday  # both restricted: either matches (cron's rule)

    def _next_wall(self, start: datetime) -> datetime | None:
        """The first matching wall-clock minute at or after the naive ``start``."""
        day: date | None = start.date()
        hour, minute = start.hour, start.minute
        last = start.date().toordinal() + _CYCLE_DAYS
        while day is not None and day.toordinal() <= last:
            if day.month not in self.months:
                day, hour, minute = _first_of_next_month(day), 0, 0  # whole months skipped at once
                continue
            if self._day_matches(day):
                for h in self.hours[bisect.bisect_left(self.hours, hour) :]:
                    i = bisect.bisect_left(self.minutes, minute if h == hour else 0)
                    if i < len(self.minutes):
                        return datetime(day.year, day.month, day.day, h, self.minutes[i])
            day = None if day == date.max else day + timedelta(days=1)
            hour = minute = 0
        return None

    def _instants(self, wall: datetime) -> tuple[datetime, ...]:
        """The UTC instants a naive wall time stands for (see the module docstring)."""
        first = wall.replace(tzinfo=self.zone)
        second = wall.replace(tzinfo=self.zone, fold=1)
        if first.utcoffset() == second.utcoffset():
            return (first.astimezone(UTC),)
        a, b = first.astimezone(UTC), second.astimezone(UTC)
        if a > b:  # in a gap: fold=0 reads it with the offset before the change, i.e. later
            return (a,)
        return (a, b) if self.every_hour else (a,)

    def _steady(self, instant: datetime) -> bool:
        """No offset change within the shift bound of ``instant`` (the fast path is exact then)."""
        offsets = {(instant + d).astimezone(self.zone).utcoffset() for d in (-_SHIFT_BOUND, _SHIFT_BOUND)}
        return len(offsets) == 1 and instant.astimezone(self.zone).utcoffset() in offsets

    # -- ticks ------------------------------------------------------------------------------

    def next_after(self, after: datetime) -> datetime | None:
        """The first tick strictly after the aware instant ``after``, in UTC; None if there is none."""
        try:
            return self._next_tick(after)
        except OverflowError:  # within hours of the end of the year 9999
            return None

    def _next_tick(self, after: datetime) -> datetime | None:
        wall = after.astimezone(self.zone).replace(tzinfo=None, second=0, microsecond=0)
        if self._steady(after):
            candidate = self._next_wall(wall + MINUTE)
            if candidate is None:
                return None
            instants = self._instants(candidate)
            if len(instants) == 1 and self._steady(instants[0]):
                return instants[0]
        return self._search(after)

    def _search(self, after: datetime) -> datetime | None:
        """Near a DST change: look at every candidate within the shift bound on either side."""
        start = (after - _SHIFT_BOUND).astimezone(self.zone).replace(tzinfo=None, second=0, microsecond=0)
        best: datetime | None = None
        limit: datetime | None = None
        candidate = self._next_wall(start)
        while candidate is not None and (limit is None or candidate <= limit):
            for instant in self._instants(candidate):
                if instant > after and (best is None or instant < best):
                    best = instant
                    limit = best.astimezone(self.zone).replace(tzinfo=None) + _SHIFT_BOUND
            candidate = self._next_wall(candidate + MINUTE)
        return best

    def ticks(self, after: datetime, until: datetime, limit: int) -> list[datetime]:
        """Up to ``limit`` ticks in ``(after, until]``, oldest first."""
        found: list[datetime] = []
        tick = self.next_after(after)
        while tick is not None and tick <= until and len(found) < limit:
            found.append(tick)
            tick = self.next_after(tick)
        return found


def parse_cron(text: str, timezone: str = "UTC", field: str = "cron") -> CronExpression:
    """Parse five fields (minute hour day-of-month month day-of-week) or a macro; ``InvalidInput`` if bad."""
    if not isinstance(text, str) or not text.strip() or len(text) > 256:
        raise InvalidInput("must be five fields (minute hour day-of-month month day-of-week) or @daily etc.", field)
    tz = zone(timezone)
    expanded = text.strip()
    if expanded.startswith("@"):
        if expanded.lower() not in MACROS:
            raise InvalidInput(f"{expanded!r} is not one of {', '.join(MACROS)}", field)
        expanded = MACROS[expanded.lower()]
    parts = expanded.split()
    if len(parts) != 5:
        raise InvalidInput(
            f"{text!r} has {len(parts)} fields; cron has five: minute hour day-of-month month day-of-week", field
        )
    try:
        parsed = [_field(part, spec) for part, spec in zip(parts, _FIELDS, strict=True)]
    except ValueError as exc:
        raise InvalidInput(f"{text!r}: {exc}", field) from None
    (minutes, _), (hours, _), (days, day_star), (months, _), (weekdays, weekday_star) = parsed
    if 7 in weekdays:
        weekdays = (weekdays - {7}) | {0}
    expression = CronExpression(
        text.strip(),
        tz,
        tuple(sorted(minutes)),
        tuple(sorted(hours)),
        days,
        months,
        weekdays,
        day_star,
        weekday_star,
    )
    if expression._next_wall(datetime(2000, 1, 1)) is None:
        raise InvalidInput(f"{text!r} never matches a date", field)
    return expression
