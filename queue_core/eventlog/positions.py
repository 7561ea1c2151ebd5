"""Points in the log given as a position (``1795250000000-0``) or a time (ISO 8601), as stream ids."""

from __future__ import annotations

import re

from queue_core.errors import InvalidInput
from queue_core.timefmt import parse_utc

__all__ = ["as_position", "before", "position_key"]

_POSITION = re.compile(r"^(\d+)(?:-(\d+))?$")
_LAST_SEQ = 2**64 - 1  # a stream id's sequence is an unsigned 64-bit number


def as_position(text: str, field: str, end: bool = True) -> str:
    """The stream id a position or a time stands for.

    A time stands for every event appended up to and including that millisecond (``end``), or
    from it on (not ``end``); positions are the log's own ids, so this is the server's clock.
    """
    match = _POSITION.match(text.strip())
    if match:
        ms, seq = match.groups()
        if any(part is not None and (len(part) > 20 or int(part) > _LAST_SEQ) for part in (ms, seq)):
            raise InvalidInput(f"{text.strip()[:40]!r} is past the largest log position", field)
        if seq is not None:
            return f"{int(ms)}-{int(seq)}"
        return f"{int(ms)}-{_LAST_SEQ if end else 0}"
    try:
        moment = parse_utc(text)
        if moment.timestamp() < 0:
            raise ValueError("before 1970")
    except ValueError:
        raise InvalidInput(f"{text!r} is neither a log position (MS-SEQ) nor an ISO 8601 time", field) from None
    ms = int(moment.timestamp() * 1000)
    return f"{ms}-{_LAST_SEQ if end else 0}"


def position_key(position: str) -> tuple[int, int]:
    """A position as a pair that sorts like the log."""
    ms, _, seq = position.partition("-")
    return int(ms), int(seq or 0)


def before(position: str) -> str:
    """The greatest position before ``position``: an exclusive start that includes ``position``."""
    ms, seq = position_key(position)
    if seq > 0:
        return f"{ms}-{seq - 1}"
    return f"{ms - 1}-{_LAST_SEQ}" if ms > 0 else "0"
