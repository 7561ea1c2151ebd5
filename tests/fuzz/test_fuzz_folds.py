"""Random sequences of every event type, with field values of the right kinds and of the wrong ones, folded by
every projection: nothing raises out of the fold, an entity whose history does not fold is quarantined, and the
result does not depend on how the log was cut into batches (a catch-up and a rebuild agree)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from queue_core.eventlog.events import Event, Recorded, event_types
from queue_core.readmodels.projections import QUARANTINE, fold
from tests.support.fuzzing import EXAMPLES, SEED

AGGREGATES = st.sampled_from(["a1", "a2", "a3"])
WORDS = st.sampled_from(["t", "u", "default", "a1", "SUCCEEDED", "FAILED", "", "\x1b[31m", "名前"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 5), st.floats(allow_nan=False), WORDS)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(WORDS, inner, max_size=3)),
    max_leaves=8,
)


def _value(annotation: str) -> st.SearchStrategy[Any]:
    """A value for a field annotated ``annotation``: mostly of its kind, sometimes of any kind."""
    if "Mapping" in annotation or "dict" in annotation or "tuple" in annotation or "Any" in annotation:
        typed = JSON
    elif annotation.startswith("int"):
        typed = st.integers(-2, 6)
    elif annotation.startswith("float"):
        typed = st.floats(-1, 1e6, allow_nan=False)
    elif annotation.startswith("bool"):
        typed = st.booleans()
    else:
        typed = WORDS
    if "None" in annotation:
        typed = st.one_of(st.none(), typed)
    return st.one_of(typed, typed, typed, JSON)  # three parts in four of the right kind


def _event(cls: type[Event]) -> st.SearchStrategy[Event]:
    fields = {f.name: _value(str(f.type)) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return st.fixed_dictionaries(fields).map(lambda values: cls(**values))


EVENTS = st.one_of(*(_event(cls) for cls in event_types().values()))
HISTORIES = st.lists(st.tuples(AGGREGATES, EVENTS), min_size=1, max_size=25)


def _recorded(history: list[tuple[str, Event]]) -> list[Recorded]:
    versions: dict[str, int] = {}
    start = datetime(2026, 12, 6, tzinfo=UTC)
    out = []
    for n, (aggregate, event) in enumerate(history):
        versions[aggregate] = versions.get(aggregate, 0) + 1
        moment = (start + timedelta(seconds=n)).isoformat().replace("+00:00", "Z")
        position = f"{1796515200000 + n}-0"
        out.append(Recorded(position, f"e{n}", type(event).__name__, aggregate, versions[aggregate], moment, event))
    return out


@seed(SEED)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(history=HISTORIES, cut=st.integers(0, 25))
def test_any_history_folds_without_raising_and_batches_do_not_matter(history: list[tuple[str, Event]], cut: int):
    records = _recorded(history)
    whole = fold({}, records)
    in_two = fold(fold({}, records[:cut]), records[cut:])
    assert in_two == whole
    for key, entry in whole[QUARANTINE].items():
        assert key == f"{entry['model']}:{entry['entity']}"
        assert entry["position"] in {rec.position for rec in records}
