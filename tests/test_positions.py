"""Positions and times as points in the log: a table of cases."""

from __future__ import annotations

import pytest

from queue_core.errors import InvalidInput
from queue_core.eventlog.positions import as_position


@pytest.mark.parametrize(
    ("text", "end", "expected"),
    [
        ("1795250000000-3", True, "1795250000000-3"),
        ("1795250000000", True, "1795250000000-18446744073709551615"),
        ("1795250000000", False, "1795250000000-0"),
        ("2026-11-21T08:00:00Z", True, "1795248000000-18446744073709551615"),
        ("2026-11-21T08:00:00+00:00", False, "1795248000000-0"),
        ("2026-11-21T09:00:00+01:00", True, "1795248000000-18446744073709551615"),
        ("2026-11-21T08:00:00", True, "1795248000000-18446744073709551615"),
        ("2026-11-21T08:00:00.250Z", True, "1795248000250-18446744073709551615"),
    ],
)
def test_a_position_or_time_becomes_the_stream_id_it_stands_for(text: str, end: bool, expected: str):
    assert as_position(text, "--as-of", end=end) == expected


@pytest.mark.parametrize("text", ["yesterday", "12-ab", "", "2026-13-01"])
def test_anything_else_is_refused_naming_the_option(text: str):
    with pytest.raises(InvalidInput, match="--since"):
        as_position(text, "--since")
