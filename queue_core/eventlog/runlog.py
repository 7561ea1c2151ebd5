"""A run's output: one Redis Stream of lines per run, with time, attempt and which pipe each came from."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import redis

from queue_core.eventlog.cold import ColdTier
from queue_core.eventlog.positions import position_key
from queue_core.keys import Keys

__all__ = ["LogLine", "RunLog"]

MAX_LINE_CHARS = 16 * 1024
MAX_LINES_PER_RUN = 100_000


@dataclass(frozen=True)
class LogLine:
    """One line a job wrote."""

    position: str
    time: str
    attempt: int
    stream: str
    line: str


class RunLog:
    """Appends and reads the output lines of runs."""

    def __init__(self, connection: redis.Redis, keys: Keys | None = None) -> None:
        self.redis = connection
        self.keys = keys or Keys()

    def write(self, run_id: str, attempt: int, lines: Iterable[tuple[str, str, str]]) -> None:
        """Append ``(time, stream, line)`` tuples in one round trip; the oldest lines beyond the cap go."""
        pipe = self.redis.pipeline(transaction=False)
        key = self.keys.run_log(run_id)
        for time, stream, line in lines:
            if len(line) > MAX_LINE_CHARS:
                line = line[:MAX_LINE_CHARS] + f" [line cut at {MAX_LINE_CHARS:,} characters]"
            fields = {"t": time, "a": attempt, "s": stream, "l": line}
            pipe.xadd(key, fields, maxlen=MAX_LINES_PER_RUN, approximate=True)  # type: ignore[arg-type]
        pipe.execute()

    def read(self, run_id: str, after: str = "0", count: int | None = None) -> list[LogLine]:
        start = f"({after}" if after != "0" else "-"
        entries: Any = self.redis.xrange(self.keys.run_log(run_id), min=start, max="+", count=count)
        if not entries and self._is_cold(run_id):
            lines = [line for line in self._cold_lines(run_id) if line.position != "0-0"]
            newer = [line for line in lines if after == "0" or position_key(line.position) > position_key(after)]
            return newer[:count] if count is not None else newer
        return [_line(pos, fields) for pos, fields in entries]

    def last(self, run_id: str, count: int) -> list[LogLine]:
        """The run's newest ``count`` lines still in Redis, oldest first (none once moved to the cold tier)."""
        entries: Any = self.redis.xrevrange(self.keys.run_log(run_id), count=count)
        return [_line(pos, fields) for pos, fields in reversed(entries)]

    def _is_cold(self, run_id: str) -> bool:
        """Whether compaction moved the run's output to the cold tier."""
        return not self.redis.exists(self.keys.run_log(run_id)) and bool(
            self.redis.sismember(self.keys.compacted, run_id)
        )

    def follow(self, run_id: str, after: str, block_ms: int) -> list[LogLine]:
        """Lines after ``after``, waiting up to ``block_ms`` for the first one."""
        reply: Any = self.redis.xread({self.keys.run_log(run_id): after}, block=block_ms, count=1000)
        lines: list[LogLine] = []
        for _key, entries in reply or []:
            lines.extend(_line(pos, fields) for pos, fields in entries)
        return lines

    def dropped(self, run_id: str) -> int:
        """How many of the run's oldest lines the cap removed (Redis counts every entry ever added)."""
        try:
            info: Any = self.redis.xinfo_stream(self.keys.run_log(run_id))
        except redis.ResponseError:  # no such stream: no line yet
            return 0
        return max(0, int(info.get("entries-added", info["length"])) - int(info["length"]))

    def marker(self, run_id: str) -> LogLine | None:
        """A line saying how many lines were dropped, to show before the first kept one; None if none were."""
        dropped = self.dropped(run_id)
        if not dropped:
            return None
        first = self.read(run_id, count=1)
        return _marker(dropped, first[0] if first else None)

    def _cold_lines(self, run_id: str) -> Iterator[LogLine]:
        rows = ColdTier(self.redis, self.keys).lines(run_id)
        lines = [LogLine(position, time, attempt, pipe, line) for position, time, attempt, pipe, line, _ in rows]
        if rows and rows[0][5]:
            yield _marker(rows[0][5], lines[0])
        yield from lines

    def iter_all(self, run_id: str) -> Iterator[LogLine]:
        """Every kept line, oldest first, after a marker line when older ones were dropped (a compacted
        run's from the cold tier)."""
        if self._is_cold(run_id):
            yield from self._cold_lines(run_id)
            return
        marker = self.marker(run_id)
        if marker is not None:
            yield marker
        after = "0"
        while True:
            batch = self.read(run_id, after, count=1000)
            if not batch:
                return
            yield from batch
            after = batch[-1].position


def _marker(dropped: int, first: LogLine | None) -> LogLine:
    time, attempt = (first.time, first.attempt) if first else ("", 0)
    text = f"{dropped:,} earlier lines were dropped: a run keeps its last {MAX_LINES_PER_RUN:,} lines"
    return LogLine(position="0-0", time=time, attempt=attempt, stream="jobledger", line=text)


def _line(pos: bytes, fields: dict[bytes, bytes]) -> LogLine:
    return LogLine(
        position=pos.decode(),
        time=fields[b"t"].decode(),
        attempt=int(fields[b"a"]),
        stream=fields[b"s"].decode(),
        line=fields[b"l"].decode("utf-8", "replace"),
    )
