"""FOLD_VERSION digests the folds and event decoding, not whole modules.

Each test loads a copy of a real module with one edit (as a module of the package, so it is walked like the
original) and computes the digest with the copy's fold in place of the original's: an edit outside the folds
must leave the digest as it is, an edit of a fold handler or of what one reaches must change it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from queue_core.domain import definitions, runs, schedules
from queue_core.eventlog import events
from queue_core.eventlog.events import Event
from queue_core.readmodels.fold_version import fold_digest, fold_inputs
from queue_core.readmodels.projections import FOLD_VERSION, PROJECTIONS, fold, routes
from queue_core.specs import logical_dates


@pytest.fixture
def copies(tmp_path: Path) -> Iterator[list[str]]:
    loaded: list[str] = []
    yield loaded
    for name in loaded:
        sys.modules.pop(name, None)


def copy_of(module: ModuleType, edits: list[tuple[str, str]], tmp_path: Path, loaded: list[str]) -> ModuleType:
    """``module`` loaded again from an edited copy of its source, as ``<its package>._copy_<its name>``."""
    text = inspect.getsource(module)
    for old, new in edits:
        assert text.count(old) == 1, f"{module.__name__} no longer holds {old!r} once"
        text = text.replace(old, new)
    package, _, leaf = module.__name__.rpartition(".")
    name = f"{package}._copy_{leaf}"
    path = tmp_path / f"_copy_{leaf}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    copy = importlib.util.module_from_spec(spec)
    sys.modules[name] = copy
    loaded.append(name)
    spec.loader.exec_module(copy)
    return copy


def digest_with(model: str, apply: Any) -> str:
    """The digest with ``apply`` as the fold of ``model``."""
    projections = [dataclasses.replace(p, apply=apply) if p.model == model else p for p in PROJECTIONS]
    return fold_digest(projections, also=(routes, fold))


def test_the_digest_is_computed_from_the_projections_and_is_stable():
    assert fold_digest(PROJECTIONS, also=(routes, fold)) == FOLD_VERSION
    inputs = "\n".join(fold_inputs(PROJECTIONS))
    assert "def _cancelled(" in inputs and "def apply_schedule(" in inputs and "def _run_started_1_to_2(" in inputs
    assert "def decide_cancel(" not in inputs and "def plan(" not in inputs and "def spec_of(" not in inputs
    assert "InvalidInput" not in inputs and "raise " not in inputs


def test_an_unchanged_copy_digests_the_same(tmp_path: Path, copies: list[str]):
    copy = copy_of(runs, [], tmp_path, copies)
    assert copy.apply_run is not runs.apply_run
    assert digest_with("runs", copy.apply_run) == FOLD_VERSION


def test_an_error_message_in_a_decision_changes_nothing(tmp_path: Path, copies: list[str]):
    copy = copy_of(runs, [("already ended: {doc['status']}", "has already ended as {doc['status']}")], tmp_path, copies)
    assert digest_with("runs", copy.apply_run) == FOLD_VERSION
    copy = copy_of(definitions, [("has no version {wanted}", "holds no version {wanted}")], tmp_path, copies)
    assert digest_with("definitions", copy.apply_definition) == FOLD_VERSION


def test_an_error_message_in_a_spec_check_changes_nothing(tmp_path: Path, copies: list[str]):
    # schedules.py imports the logical-date check for its decisions: a copy of it, with another message,
    # under a copy of schedules.py that imports it.
    dates = copy_of(logical_dates, [("must be a date YYYY-MM-DD", "must be a day YYYY-MM-DD")], tmp_path, copies)
    copy = copy_of(
        schedules, [("from queue_core.specs.logical_dates import", f"from {dates.__name__} import")], tmp_path, copies
    )
    assert copy.normalize_logical_date is dates.normalize_logical_date
    assert digest_with("schedules", copy.apply_schedule) == FOLD_VERSION


def test_a_changed_fold_handler_changes_the_digest(tmp_path: Path, copies: list[str]):
    cancelled = ('"reason": CANCELLED_BY_USER, "finished_at": rec.time}', '"reason": CANCELLED_BY_USER}')
    copy = copy_of(runs, [cancelled], tmp_path, copies)
    assert digest_with("runs", copy.apply_run) != FOLD_VERSION
    paused = ('return {**doc, "status": PAUSED, ', 'return {**doc, "status": PAUSED, "cursor": None, ')
    copy = copy_of(schedules, [paused], tmp_path, copies)
    assert digest_with("schedules", copy.apply_schedule) != FOLD_VERSION


def test_what_a_handler_reaches_counts_too(tmp_path: Path, copies: list[str]):
    constant = copy_of(runs, [('"Recently submitted"', '"Just submitted"')], tmp_path, copies)
    assert digest_with("runs", constant.apply_run) != FOLD_VERSION
    order = ("return int(ms) * 1000 + min(int(seq or 0), 999)", "return int(ms) * 1000")
    helper = copy_of(runs, [order], tmp_path, copies)
    assert digest_with("runs", helper.apply_run) != FOLD_VERSION


def test_event_fields_and_upcasters_count(monkeypatch: pytest.MonkeyPatch):
    @dataclasses.dataclass(frozen=True)
    class RunQueued(Event):
        attempt: int
        job_id: str
        queue: str = "default"

    monkeypatch.setitem(events._TYPES, "RunQueued", RunQueued)
    assert fold_digest(PROJECTIONS, also=(routes, fold)) != FOLD_VERSION
    monkeypatch.undo()
    monkeypatch.setitem(events._UPCASTERS, ("RunQueued", 1), lambda data: {**data, "queue": "default"})
    assert fold_digest(PROJECTIONS, also=(routes, fold)) != FOLD_VERSION
