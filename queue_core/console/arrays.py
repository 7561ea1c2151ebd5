"""An array job's children in the console: their counts by state, a page of them, and where a child sits.

A for-each task's run is an array parent too, so whatever has ``array`` on its run is drawn here as "children".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from queue_core.client import Client
from queue_core.domain.arrays import child_id
from queue_core.domain.runs import CANCELLED, FAILED, PENDING, RUNNING, SUCCEEDED
from queue_core.errors import InvalidInput, NotFound

__all__ = ["NOT_ENDED", "SHOWN_ORDER", "Children", "children_counts", "children_page", "place_of"]

NOT_ENDED = "NOT_ENDED"  # as of a past point: children that had not ended then (pending or running; not folded)
SHOWN_ORDER = (SUCCEEDED, FAILED, CANCELLED, RUNNING, PENDING, NOT_ENDED)  # the order of a bar's segments
SCAN_CHUNK = 2000  # children's documents read at once when a page is filtered by state


def children_counts(client: Client, run_id: str, as_of: str = "+") -> dict[str, Any] | None:
    """``{"size", "counts"}`` of an array parent (None for any other run), counts in ``SHOWN_ORDER``.

    Now: as ``status`` counts them. As of a past point: the children the parent had noted ended by then, and
    the others as ``NOT_ENDED`` (telling pending from running would fold every child's history).
    """
    if as_of == "+":
        array = client.get_run(run_id)["array"]
        if array is None:
            return None
        counts = array["counts"]
    else:
        doc = client.run_detail(run_id, as_of)
        if doc.get("array") is None:  # a quarantined run's last good document may predate arrays
            return None
        array = doc["array"]
        counts = {**array["counts"], NOT_ENDED: array["size"] - len(array["ended"])}
    return {"size": array["size"], "counts": {s: counts.get(s, 0) for s in SHOWN_ORDER if counts.get(s, 0)}}


@dataclass(frozen=True)
class Children:
    """One page of a parent's children: each row's index, id and document (None: not submitted yet)."""

    rows: list[dict[str, Any]]
    start: int
    matched: int  # the children the filter keeps (all of them without one)


def children_page(
    client: Client, parent: str, size: int, start: int, count: int, status: str | None, as_of: str = "+"
) -> Children:
    """Children ``start`` to ``start + count`` of the ``size``, those in ``status`` only if given (read from the
    read models now, each folded as of a past point)."""
    if as_of != "+":
        if status:
            raise InvalidInput("as of a past point, children are not filtered by state", "status")
        indexes = list(range(start, min(size, start + count)))
        return Children([_row(i, _child_as_of(client, child_id(parent, i), as_of)) for i in indexes], start, size)
    client.read_models.catch_up()
    if status is None:
        indexes = list(range(start, min(size, start + count)))
        docs = client.read_models.get_many("runs", [child_id(parent, i) for i in indexes])
        return Children([_row(i, d) for i, d in zip(indexes, docs, strict=True)], start, size)
    kept: list[dict[str, Any]] = []
    for first in range(0, size, SCAN_CHUNK):
        indexes = list(range(first, min(size, first + SCAN_CHUNK)))
        docs = client.read_models.get_many("runs", [child_id(parent, i) for i in indexes])
        # A child not submitted yet is pending: the dispatcher is about to submit it.
        kept += [_row(i, d) for i, d in zip(indexes, docs, strict=True) if (d["status"] if d else PENDING) == status]
    return Children(kept[start : start + count], start, len(kept))


def _row(index: int, doc: dict[str, Any] | None) -> dict[str, Any]:
    return {"index": index, "doc": doc}


def _child_as_of(client: Client, run_id: str, as_of: str) -> dict[str, Any] | None:
    try:
        return dict(client.get_run(run_id, as_of))
    except NotFound:
        return None  # not submitted yet at that point


def place_of(client: Client, run: dict[str, Any]) -> dict[str, Any] | None:
    """Where an array child sits: its parent, its index, the parent's size and the siblings beside it."""
    parent, index = run.get("array_parent"), run.get("array_index")
    if parent is None or index is None:
        return None
    doc = client.read_models.get("runs", parent)  # a parent's size never changes: now's is right for any point
    size = doc["array"]["size"] if doc and doc.get("array") else None
    return {
        "parent": parent,
        "index": index,
        "size": size,
        "previous": child_id(parent, index - 1) if index > 0 else None,
        "next": child_id(parent, index + 1) if size is not None and index + 1 < size else None,
    }
