"""Task values: the small JSON object a job publishes for its downstream, and the ``${tasks.T.values.K}`` references.

A value reference names an upstream task and one key of its values; it may stand in a task's args, its
variables, its inline SQL pipeline, a ``forEach``'s inputs and a condition. ``substitute`` puts the values
in; a value that does not exist raises ``MissingValue`` naming it.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Mapping
from typing import Any

from queue_core.errors import InvalidInput, JobledgerError

__all__ = [
    "MAX_VALUES_BYTES",
    "VALUES_FILE_VARIABLE",
    "MissingValue",
    "check_values",
    "references_in",
    "substitute",
    "values_from_sql_result",
]

MAX_VALUES_BYTES = 48 * 1024
VALUES_FILE_VARIABLE = "JOBLEDGER_VALUES_FILE"
KEY_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_REFERENCE = re.compile(r"\$\{tasks\.(?P<task>[A-Za-z0-9][A-Za-z0-9_.-]*?)\.values\.(?P<key>[A-Za-z_][A-Za-z0-9_]*)\}")
_OPENING = "${tasks."

Lookup = Callable[[str, str], Any]  # (task, key) -> value; raises MissingValue


class MissingValue(JobledgerError):
    """Raised when a value reference names a value its task did not publish."""

    def __init__(self, task: str, key: str, why: str = "") -> None:
        self.task, self.key = task, key
        super().__init__(f"missing value ${{tasks.{task}.values.{key}}}" + (f": {why}" if why else ""))


def _strings(value: Any, field: str) -> list[tuple[str, str]]:
    """Every string inside ``value`` (JSON-shaped), with where it is; iterative, however deep."""
    out: list[tuple[str, str]] = []
    todo: list[tuple[Any, str]] = [(value, field)]
    while todo:
        current, where = todo.pop()
        if isinstance(current, str):
            out.append((current, where))
        elif isinstance(current, Mapping):
            todo.extend((v, f"{where}.{k}") for k, v in current.items())
        elif isinstance(current, list | tuple):
            todo.extend((v, f"{where}[{i}]") for i, v in enumerate(current))
    return out


def references_in(value: Any, field: str) -> list[tuple[str, str]]:
    """Every ``(task, key)`` referenced in the strings of ``value``; ``InvalidInput`` for a malformed one."""
    found: list[tuple[str, str]] = []
    for text, where in _strings(value, field):
        start = text.find(_OPENING)
        while start >= 0:
            match = _REFERENCE.match(text, start)
            if match is None:
                shown = text[start : start + 60]
                raise InvalidInput(f"{shown!r} is not a value reference ${{tasks.NAME.values.KEY}}", where)
            found.append((match.group("task"), match.group("key")))
            start = text.find(_OPENING, match.end())
    return found


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def substitute(value: Any, lookup: Lookup, quote: bool = False) -> Any:
    """``value`` with every reference replaced by its value's text (a string as it is, anything else as JSON).

    ``quote``: shell-quote each value (for ``args``, which are split into words: a value stays one word).
    Mappings and lists are rebuilt, so the caller's stays as it was.
    """

    def one(text: str) -> str:
        if _OPENING not in text:
            return text
        return _REFERENCE.sub(
            lambda m: (shlex.quote if quote else str)(_text(lookup(m.group("task"), m.group("key")))), text
        )

    if isinstance(value, str):
        return one(value)
    # A job's pieces are a few levels deep (pipeline -> sequence -> step): rebuilt with a stack of builders.
    root: list[Any] = [None]
    todo: list[tuple[Any, Any, Any]] = [(value, root, 0)]
    while todo:
        current, parent, slot = todo.pop()
        if isinstance(current, str):
            parent[slot] = one(current)
        elif isinstance(current, Mapping):
            built: dict[str, Any] = {}
            parent[slot] = built
            todo.extend((v, built, k) for k, v in current.items())
        elif isinstance(current, list | tuple):
            items: list[Any] = [None] * len(current)
            parent[slot] = items
            todo.extend((v, items, i) for i, v in enumerate(current))
        else:
            parent[slot] = current
    return root[0]


def check_values(raw: Any, where: str = "values") -> dict[str, Any]:
    """A published values object: JSON, an object, keys that references can name, at most ``MAX_VALUES_BYTES``."""
    if isinstance(raw, bytes | str):
        if len(raw) > MAX_VALUES_BYTES:
            raise InvalidInput(f"are {len(raw)} bytes; at most {MAX_VALUES_BYTES}", where)
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise InvalidInput(f"are not JSON: {exc}", where) from None
    if not isinstance(raw, dict):
        raise InvalidInput("must be a JSON object of KEY: value", where)
    for key in raw:
        if not KEY_PATTERN.fullmatch(key):
            raise InvalidInput(f"key {key[:60]!r} must be letters, digits and '_', not starting with a digit", where)
    size = len(json.dumps(raw, separators=(",", ":")).encode())
    if size > MAX_VALUES_BYTES:
        raise InvalidInput(f"are {size} bytes as JSON; at most {MAX_VALUES_BYTES}", where)
    return raw


def values_from_sql_result(result: Mapping[str, Any] | None) -> dict[str, Any]:
    """A SQL run's values: its preview rows (of its query, else its last output) as objects under ``rows``,
    and the first row's columns as keys of their own (``select count(*) as n`` gives ``n``)."""
    shown = (result or {}).get("query") or ((result or {}).get("outputs") or [None])[-1]
    if not isinstance(shown, Mapping) or not shown.get("columns"):
        return {}
    names = [str(column[0]) for column in shown["columns"]]
    rows = [dict(zip(names, row, strict=False)) for row in shown.get("preview") or []]
    values: dict[str, Any] = {"rows": rows}
    if rows:
        values.update({k: v for k, v in rows[0].items() if KEY_PATTERN.fullmatch(k)})
    try:
        return check_values(values)
    except InvalidInput:
        return {"rows": rows[:1]} if len(json.dumps(rows[:1], default=str)) < MAX_VALUES_BYTES else {}
