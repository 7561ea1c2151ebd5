"""Output lines while the store is away: kept in order, the oldest dropped beyond the limit, written when it is back."""

from __future__ import annotations

import redis

from workers.outage import BufferedLines


class FlakyLog:
    """A run log that refuses writes while ``away`` is set, as a store that cannot be reached does."""

    def __init__(self) -> None:
        self.away = False
        self.written: list[tuple[str, str, str]] = []

    def __call__(self, lines: list[tuple[str, str, str]]) -> None:
        if self.away:
            raise redis.ConnectionError("Connection refused")
        self.written.extend(lines)


def _lines(*texts: str) -> list[tuple[str, str, str]]:
    return [("2026-11-21T00:00:00Z", "stdout", text) for text in texts]


def test_lines_written_while_the_store_is_away_are_kept_and_written_in_order_when_it_is_back():
    log = FlakyLog()
    buffer = BufferedLines(log, limit=10)
    buffer(_lines("a"))
    log.away = True
    buffer(_lines("b", "c"))
    assert buffer.flush() is False
    assert [line[2] for line in log.written] == ["a"]
    log.away = False
    assert buffer.flush() is True
    assert [line[2] for line in log.written] == ["a", "b", "c"]
    assert buffer.dropped == 0 and buffer.pending == []


def test_beyond_the_limit_the_oldest_kept_lines_are_dropped_and_counted():
    log = FlakyLog()
    buffer = BufferedLines(log, limit=2)
    log.away = True
    buffer(_lines("1", "2", "3"))
    buffer(_lines("4"))
    assert buffer.dropped == 2
    log.away = False
    assert buffer.flush() is True
    assert [line[2] for line in log.written] == ["3", "4"]
