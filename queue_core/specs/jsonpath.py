"""A small, safe subset of JSONPath: ``$``, ``.name``, ``['name']`` and ``[index]``, parsed once, no expressions.

Enough to read a field of an external application's JSON answer (``$.status``, ``$.jobs[0].state``,
``$['run-id']``); filters, wildcards, slices and scripts are refused by name rather than evaluated.
"""

from __future__ import annotations

import re
from typing import Any

from queue_core.errors import InvalidInput

__all__ = ["MISSING", "find", "parse_path"]

MISSING = object()  # what ``find`` returns when the path leads nowhere
MAX_PATH_CHARS = 512
_STEP = re.compile(
    r"""\.(?P<name>[A-Za-z_][A-Za-z0-9_-]*)
      |\[(?P<index>-?[0-9]{1,9})\]
      |\[(?P<quote>['"])(?P<key>(?:(?!(?P=quote)).){0,256})(?P=quote)\]""",
    re.VERBOSE,
)


def parse_path(path: Any, field: str) -> tuple[str | int, ...]:
    """The steps of a JSONPath in the subset (names and indexes), or ``InvalidInput`` naming what is not in it."""
    if not isinstance(path, str) or not path.startswith("$") or len(path) > MAX_PATH_CHARS:
        raise InvalidInput("must be a JSONPath starting with $ (like $.status or $.jobs[0].state)", field)
    steps: list[str | int] = []
    at = 1
    while at < len(path):
        match = _STEP.match(path, at)
        if match is None:
            rest = path[at:]
            what = (
                "a filter" if rest.startswith("[?") else
                "a wildcard" if "*" in rest[:3] else
                "a recursive descent" if rest.startswith("..") else
                "a slice" if re.match(r"\[-?\d*:", rest) else
                f"{rest[:20]!r}"
            )  # fmt: skip
            raise InvalidInput(f"{what} is not in the JSONPath subset ($, .name, ['name'], [index])", field)
        if match.group("name") is not None:
            steps.append(match.group("name"))
        elif match.group("index") is not None:
            steps.append(int(match.group("index")))
        else:
            steps.append(match.group("key"))
        at = match.end()
    return tuple(steps)


def find(document: Any, steps: tuple[str | int, ...]) -> Any:
    """The value the steps lead to in a JSON document, or ``MISSING``."""
    value = document
    for step in steps:
        indexed = isinstance(step, int) and isinstance(value, list) and -len(value) <= step < len(value)
        if indexed or (isinstance(step, str) and isinstance(value, dict) and step in value):
            value = value[step]
        else:
            return MISSING
    return value
