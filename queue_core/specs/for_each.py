"""For-each tasks: ``forEach: {inputs, concurrency, task}`` in a workflow file, and the items its run gets.

``inputs`` is a list (1 to 10,000 items) or one value reference ``${tasks.T.values.K}`` resolved when the
task starts (a JSON list, or a string holding one). ``${item}`` and ``${index}`` stand in the inner task's
args and variables; each child gets its own.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from typing import Any

from queue_core.errors import InvalidInput, JobledgerError
from queue_core.specs import checks
from queue_core.specs.arrays import MAX_ARRAY
from queue_core.specs.task_values import Lookup, references_in, substitute

__all__ = [
    "INNER_KEYS",
    "MAX_ITEMS",
    "ForEachInputsError",
    "check_items",
    "normalize_for_each",
    "resolve_items",
    "with_item",
]

MAX_ITEMS = MAX_ARRAY
MAX_CONCURRENCY = MAX_ARRAY
INNER_KEYS = frozenset({"definition", "job", "args", "envVars", "cluster"})
_KEYS = {"inputs", "concurrency", "task"}
_ONE_REFERENCE = re.compile(r"^\$\{tasks\.[^}]+\}$")
_ITEM = re.compile(r"\$\{(item|index)\}")


class ForEachInputsError(JobledgerError):
    """Raised when a for-each task's inputs, read from a value when it starts, are not a list of 1 to 10,000."""

    def __init__(self, reference: str, why: str) -> None:
        super().__init__(f"forEach inputs {reference} {why}")


def check_items(items: Any, field: str) -> list[Any]:
    """``items`` as a for-each task's inputs: a list of 1 to 10,000 JSON values; else ``InvalidInput``."""
    if not isinstance(items, list):
        raise InvalidInput("must be a list of inputs or one value reference ${tasks.NAME.values.KEY}", field)
    if not items:
        raise InvalidInput("is empty: a for-each needs at least one input", field)
    if len(items) > MAX_ITEMS:
        raise InvalidInput(f"has {len(items):,} inputs; at most {MAX_ITEMS:,}", field)
    return items


def normalize_for_each(raw: Any, field: str) -> tuple[dict[str, Any], Mapping[str, Any]]:
    """The normalized ``forEach`` (``inputs`` and ``concurrency``) and its inner task's raw body."""
    body = checks.mapping(raw, field)
    checks.no_unknown(body, _KEYS, field)
    if body.get("inputs") is None:
        raise InvalidInput("needs inputs: a list, or a value reference ${tasks.NAME.values.KEY}", f"{field}.inputs")
    inputs = body["inputs"]
    if isinstance(inputs, str):
        if not _ONE_REFERENCE.match(inputs) or len(references_in(inputs, f"{field}.inputs")) != 1:
            raise InvalidInput(
                "must be a list or exactly one value reference ${tasks.NAME.values.KEY}", f"{field}.inputs"
            )
    else:
        check_items(inputs, f"{field}.inputs")
    concurrency = body.get("concurrency", 1)
    checks.whole_number(concurrency, f"{field}.concurrency", 1, MAX_CONCURRENCY)
    inner = checks.mapping(body.get("task"), f"{field}.task")
    checks.no_unknown(inner, INNER_KEYS, f"{field}.task")
    if sum(k in inner for k in ("definition", "job")) != 1:
        raise InvalidInput("needs exactly one of definition or job", f"{field}.task")
    return {"inputs": inputs, "concurrency": concurrency}, inner


def resolve_items(inputs: Any, lookup: Lookup) -> list[Any]:
    """The items of a for-each task starting now: its literal list, or the value its reference names
    (``MissingValue`` naming a value that does not exist, ``ForEachInputsError`` for one that is no list)."""
    if not isinstance(inputs, str):
        return list(inputs)
    value = substitute_value(inputs, lookup)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ForEachInputsError(inputs, "is a string that is not a JSON list") from None
    try:
        return check_items(value, "inputs")
    except InvalidInput as exc:
        raise ForEachInputsError(inputs, exc.detail) from None


def substitute_value(reference: str, lookup: Lookup) -> Any:
    """The value one whole reference names, as it is (a list stays a list)."""
    found: list[Any] = []

    def keep(task: str, key: str) -> str:
        found.append(lookup(task, key))
        return ""

    substitute(reference, keep)
    return found[0]


def _text(item: Any) -> str:
    return item if isinstance(item, str) else json.dumps(item, separators=(",", ":"))


def with_item(job: Mapping[str, Any], item: Any, index: int) -> dict[str, Any]:
    """A child's job: ``${item}`` and ``${index}`` put in its args (each one word) and its variables."""
    words = {"item": _text(item), "index": str(index)}
    out = dict(job)
    if isinstance(job.get("args"), str):
        out["args"] = _ITEM.sub(lambda m: shlex.quote(words[m.group(1)]), job["args"])
    if job.get("envVars"):
        out["envVars"] = {
            k: _ITEM.sub(lambda m: words[m.group(1)], v) if isinstance(v, str) else v for k, v in job["envVars"].items()
        }
    return out
