"""Looking for a retry rule's ``onLogMatch`` in an attempt's output as it streams to the run's log."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["LogWatch"]

Lines = list[tuple[str, str, str]]

# A line longer than this is searched in its first part only: a pattern's cost grows with what it reads.
MAX_SEARCHED_CHARS = 4096


class LogWatch:
    """An output sink that passes lines on and notes which rules' ``onLogMatch`` found one of them.

    Lines are searched as the run's log shows them (masked): a rule never decides on a secret's value.
    The indexes are recorded on the failure (``RunAttemptFailed.log_matches``), so the retry decision
    reads a fact of the log and replays the same.
    """

    def __init__(
        self, rules: Sequence[Mapping[str, Any]], forward: Callable[[Lines], Any], mask: Callable[[str], str]
    ) -> None:
        self.forward = forward
        self.mask = mask
        self.waiting = {i: re.compile(rule["onLogMatch"]) for i, rule in enumerate(rules) if "onLogMatch" in rule}
        self.found: set[int] = set()

    def __call__(self, lines: Lines) -> None:
        if self.waiting:
            for _time, _stream, line in lines:
                shown = self.mask(line)[:MAX_SEARCHED_CHARS]
                for index, pattern in list(self.waiting.items()):
                    if pattern.search(shown):
                        self.found.add(index)
                        del self.waiting[index]
        self.forward(lines)

    @property
    def matches(self) -> tuple[int, ...]:
        """The indexes of the rules whose pattern some line matched, in order."""
        return tuple(sorted(self.found))
