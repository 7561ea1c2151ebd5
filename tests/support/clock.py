"""A fake clock for tests that need time: the test sets or moves it, code under test calls it for now.

Anything that takes ``clock: Callable[[], datetime]`` (the schedule timer does) takes a ``Clock``; a
pure function that takes ``now`` is handed ``clock.now``. Nothing sleeps.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

T0 = datetime(2026, 11, 21, 8, 0, 30, tzinfo=UTC)  # 30 s after a whole minute: ticks at :00 are 30 s away


class Clock:
    """A clock the test moves."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        """Move on by ``timedelta(**delta)`` (``minutes=5``, ``seconds=10``) and return the new now."""
        self.now += timedelta(**delta)
        return self.now
