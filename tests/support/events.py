"""Events as the log records them, with no Redis: histories to fold through the real ``apply_*`` functions.

``recorded`` wraps events in the ``Recorded`` envelope the store would give them (a position and a time
that grow, versions 1..n on one aggregate); ``fold`` runs them through a fold and returns the document;
``project`` turns decided events into ``(type, {field: value})`` for comparing with a table's expectation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from queue_core.eventlog.events import Event, Recorded
from tests.support.clock import T0

Doc = dict[str, Any]
Fold = Callable[[Doc | None, Recorded], Doc | None]
Timed = Event | tuple[float, Event]  # an event, or (seconds after ``at``, event)


def iso(moment: datetime) -> str:
    """A time as the store writes it in an envelope: UTC, microseconds, ``Z``."""
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def recorded(
    aggregate: str, events: Iterable[Timed], at: datetime = T0, every: float = 1.0, first_version: int = 1
) -> list[Recorded]:
    """``events`` on ``aggregate`` as the log would hold them: versions from ``first_version`` on, one event
    every ``every`` seconds from ``at`` (an item ``(seconds, event)`` is recorded ``seconds`` after ``at``),
    positions in the same order."""
    out = []
    for version, item in enumerate(events, start=first_version):
        seconds, event = item if isinstance(item, tuple) else ((version - 1) * every, item)
        moment = at + timedelta(seconds=seconds)
        position = f"{int(moment.timestamp() * 1000)}-{version}"
        envelope = (position, f"{aggregate}/{version}", type(event).__name__, aggregate, version, iso(moment))
        out.append(Recorded(*envelope, event))
    return out


def fold(apply: Fold, aggregate: str, events: Iterable[Timed], at: datetime = T0) -> Doc | None:
    """The document ``apply`` folds from ``events`` on ``aggregate`` (None if they make none)."""
    doc: Doc | None = None
    for rec in recorded(aggregate, events, at):
        doc = apply(doc, rec)
    return doc


def fold_more(apply: Fold, doc: Doc, events: Iterable[Event], after: int, at: datetime = T0) -> Doc:
    """``doc`` (at version ``after``) with ``events`` folded on, as the next versions: what deciding then
    appending them would leave."""
    for rec in recorded(doc["id"], events, at, first_version=after + 1):
        doc = apply(doc, rec) or doc
    return doc


def project(events: Sequence[Event], expected: Sequence[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict]]:
    """``events`` as ``(type name, {field: value})``, keeping for each the fields its expectation names (all of
    them past the expectation's end), so ``project(decided, expected) == expected`` reads as a table's row."""
    out = []
    for index, event in enumerate(events):
        data = event.to_data()
        fields = expected[index][1].keys() if index < len(expected) else data.keys()
        out.append((type(event).__name__, {name: data.get(name, "<no such field>") for name in fields}))
    return out
