"""Searching runs: a filter held in the URL (definition, workflow, status, reason, cluster, tag, time range, free
text) and the walk that answers it, newest first, through the smallest index and a bounded number of documents."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import QueryParams

from queue_core.domain.runs import STATUSES
from queue_core.errors import InvalidInput
from queue_core.readmodels.materialized import ReadModels
from queue_core.specs import checks
from queue_core.timefmt import parse_duration, parse_utc

__all__ = ["RunFilter", "SearchPage", "search_runs"]

SEARCH_CHUNK = 500  # index entries read (and documents fetched) per round
SEARCH_SCAN_LIMIT = 5000  # runs one page looks at before it offers "older": a page's cost is bounded
MAX_TEXT = 200
MICROS = 1_000_000


def _when(given: str, name: str, now: datetime) -> float | None:
    """A time range's bound as an order score: an ISO time, or a duration back from now (``24h``, ``7d``)."""
    if not given:
        return None
    try:
        moment = now - parse_duration(given) if given[-1:].isalpha() and given[:-1].isdigit() else parse_utc(given)
    except (ValueError, OverflowError):
        raise InvalidInput(f"{given[:40]!r} is neither a time (2026-12-06T09:00Z) nor a duration (24h)", name) from None
    try:
        return moment.timestamp() * MICROS
    except (OverflowError, ValueError):
        raise InvalidInput(f"{given[:40]!r} is out of range", name) from None


@dataclass(frozen=True)
class RunFilter:
    """What a runs view shows; each field a URL parameter of the same name (``q``: the free text)."""

    status: str = ""
    definition: str = ""
    workflow: str = ""
    reason: str = ""
    cluster: str = ""
    tag: str = ""
    since: str = ""
    until: str = ""
    q: str = ""

    @classmethod
    def from_params(cls, params: QueryParams) -> RunFilter:
        """The filter a URL holds; ``InvalidInput`` naming the parameter for a value that cannot be one."""
        given = {f.name: params.get(f.name, "").strip() for f in fields(cls)}
        for name, value in given.items():
            if len(value) > MAX_TEXT:
                raise InvalidInput(f"longer than {MAX_TEXT} characters", name)
            if "\x00" in value:
                raise InvalidInput("holds a NUL character", name)
        if given["status"]:
            given["status"] = checks.choice(given["status"].upper(), STATUSES, "status")
        found = cls(**given)
        now = datetime.now(UTC)
        low, high = found.bounds(now)
        if low is not None and high is not None and low >= high:
            raise InvalidInput("must be before until", "since")
        return found

    def bounds(self, now: datetime) -> tuple[float | None, float | None]:
        """The time range as order scores (a run's score is when it was submitted)."""
        return _when(self.since, "since", now), _when(self.until, "until", now)

    def params(self) -> dict[str, str]:
        """The non-empty parameters, for a URL that shows the same view."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}

    @property
    def needs_search(self) -> bool:
        """Whether an index read alone cannot answer it (anything beyond status and definition)."""
        return any((self.workflow, self.reason, self.cluster, self.tag, self.since, self.until, self.q))

    def driver(self) -> str:
        """The index the walk reads: a tag's or a definition's (usually the smallest), else a status's, else every
        run's."""
        if self.tag:
            return f"tag:{self.tag}"
        if self.definition:
            return f"definition:{self.definition}"
        return f"status:{self.status}" if self.status else "all"

    def matches(self, doc: dict[str, Any], workflow_of: dict[str, str]) -> bool:
        if self.status and doc["status"] != self.status:
            return False
        if self.definition and doc["definition"] != self.definition:
            return False
        if self.reason and self.reason.lower() not in (doc["reason"] or "").lower():
            return False
        if self.cluster and doc["cluster"] != self.cluster:
            return False
        if self.tag and self.tag not in doc["tags"]:
            return False
        if self.workflow and workflow_of.get(doc["workflow_run"] or "") != self.workflow:
            return False
        if self.q:
            text = self.q.lower()
            names = (doc["id"], doc["definition"], doc["task"] or "", doc["workflow_run"] or "", doc["cluster"])
            if not any(text in value.lower() for value in names):
                return False
        return True


@dataclass(frozen=True)
class SearchPage:
    """Matching runs newest first; ``older``: the cursor the next page starts below (None: none older)."""

    runs: list[dict[str, Any]]
    older: float | None
    scanned: int


def search_runs(models: ReadModels, wanted: RunFilter, size: int, older_than: float | None = None) -> SearchPage:
    """The newest ``size`` runs matching ``wanted`` below ``older_than``: the driver index read by score within the
    time range, a chunk of documents at a time, stopping after ``SEARCH_SCAN_LIMIT`` runs (then ``older`` says
    where to go on). Only the runs Redis holds are searched (compacted ones are listed by the plain filters)."""
    low, high = wanted.bounds(datetime.now(UTC))
    cursor = older_than if high is None or (older_than is not None and older_than < high) else high
    found: list[dict[str, Any]] = []
    scanned = 0
    while len(found) < size and scanned < SEARCH_SCAN_LIMIT:
        chunk = models.window("runs", wanted.driver(), SEARCH_CHUNK, older_than=cursor, floor=low)
        if not chunk:
            return SearchPage(found, None, scanned)
        docs = models.get_many("runs", [entity for entity, _ in chunk])
        workflow_of: dict[str, str] = {}
        if wanted.workflow:
            ids = sorted({d["workflow_run"] for d in docs if d and d["workflow_run"]})
            found_runs = models.get_many("workflow_runs", ids)
            workflow_of = {i: w["workflow"] for i, w in zip(ids, found_runs, strict=True) if w}
        for (_, score), doc in zip(chunk, docs, strict=True):
            scanned += 1
            cursor = score
            if doc is not None and wanted.matches(doc, workflow_of):
                found.append({**doc})
                if len(found) == size:
                    break
        if len(chunk) < SEARCH_CHUNK and len(found) < size:
            return SearchPage(found, None, scanned)
    return SearchPage(found, cursor, scanned)
