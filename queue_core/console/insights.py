"""What the overview and the history views read: runs counted by status per time bucket, an index's recent runs,
how long they took, the running runs per cluster. Every read is by index score, bounded whatever the log's size."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from queue_core.console.humane import elapsed
from queue_core.domain.runs import FAILED, RUNNING, STATUSES, TERMINAL
from queue_core.readmodels.materialized import ReadModels

__all__ = [
    "DefinitionStats",
    "Histogram",
    "History",
    "definition_stats",
    "history",
    "percentile",
    "recent_runs",
    "run_seconds",
    "running_by_cluster",
    "status_histogram",
    "task_grid",
]

# The newest runs the overview's slowest and most failing definitions are drawn from: 200, so the overview
# reads the same documents at 200 runs as at 200,000 (at 1,000 it cost 3x at 200,000 what it cost at 200).
RECENT_SAMPLE = 200
HISTORY_RUNS = 60  # cells of a definition's strip and points of its duration chart
GRID_RUNS = 25  # workflow runs (columns) of a workflow's task grid
MAX_RUNNING = 2000  # running runs counted per cluster (running runs are bounded by the workers, not the log)
MICROS = 1_000_000


@dataclass(frozen=True)
class Histogram:
    """Runs submitted in each bucket, by their status now; ``edges`` are the buckets' bounds as order scores."""

    edges: list[float]
    counts: dict[str, list[int]]
    width_seconds: int

    @property
    def total(self) -> int:
        return sum(sum(c) for c in self.counts.values())


def status_histogram(models: ReadModels, now: datetime, buckets: int, width_seconds: int) -> Histogram:
    """Runs of the last ``buckets`` times ``width_seconds`` by bucket and status: ZCOUNTs on the status indexes.

    A run's order score is its submission's log position (milliseconds times 1000), so a time range is a score range.
    """
    end = (int(now.timestamp()) // width_seconds + 1) * width_seconds  # buckets aligned on whole widths
    edges = [float((end - (buckets - i) * width_seconds) * MICROS) for i in range(buckets + 1)]
    found = models.counts("runs", [f"status:{s}" for s in STATUSES], edges)
    return Histogram(edges, {s: found[f"status:{s}"] for s in STATUSES}, width_seconds)


def run_seconds(doc: dict[str, Any]) -> float | None:
    """How long an ended run took: from its first attempt's start to its end (None if it never started)."""
    if doc["finished_at"] is None or not doc["attempts"]:
        return None
    return elapsed(doc["attempts"][0]["started_at"], doc["finished_at"])


def recent_runs(models: ReadModels, index: str, count: int) -> list[dict[str, Any]]:
    """The newest ``count`` runs of an index, newest first (one range read and one HMGET)."""
    ids = [entity for entity, _ in models.window("runs", index, count)]
    return [doc for doc in models.get_many("runs", ids) if doc is not None]


def percentile(values: list[float], share: float) -> float | None:
    """The ``share`` quantile (0.5: the median) of ``values``, by nearest rank; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


@dataclass(frozen=True)
class History:
    """A definition's recent runs oldest first (the strip, newest right) and its durations' median and p95."""

    runs: list[dict[str, Any]]
    median: float | None
    p95: float | None


def history(models: ReadModels, definition: str, count: int = HISTORY_RUNS) -> History:
    runs = recent_runs(models, f"definition:{definition}", count)[::-1]
    seconds = [s for doc in runs if (s := run_seconds(doc)) is not None]
    return History(runs, percentile(seconds, 0.5), percentile(seconds, 0.95))


@dataclass(frozen=True)
class DefinitionStats:
    """One definition among the newest runs: how many ended, failed, and how long its runs took."""

    name: str
    ended: int
    failed: int
    median: float | None

    @property
    def failure_rate(self) -> float:
        return self.failed / self.ended if self.ended else 0.0


def definition_stats(models: ReadModels, sample: int = RECENT_SAMPLE) -> list[DefinitionStats]:
    """Per definition, over the newest ``sample`` runs of all: ended and failed runs and the median duration."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for doc in recent_runs(models, "all", sample):
        if doc["status"] in TERMINAL:
            by_name.setdefault(doc["definition"], []).append(doc)
    stats = []
    for name, docs in by_name.items():
        seconds = [s for d in docs if (s := run_seconds(d)) is not None]
        failed = sum(1 for d in docs if d["status"] == FAILED)
        stats.append(DefinitionStats(name, len(docs), failed, statistics.median(seconds) if seconds else None))
    return stats


def running_by_cluster(models: ReadModels) -> dict[str, int]:
    """How many runs are running now, per cluster."""
    counts: dict[str, int] = {}
    for doc in recent_runs(models, f"status:{RUNNING}", MAX_RUNNING):
        counts[doc["cluster"]] = counts.get(doc["cluster"], 0) + 1
    return counts


def task_grid(models: ReadModels, workflow: str, count: int = GRID_RUNS) -> tuple[list[str], list[dict[str, Any]]]:
    """A workflow's newest runs oldest first (columns, newest right) and the task names (rows) they hold."""
    ids = [entity for entity, _ in models.window("workflow_runs", f"workflow:{workflow}", count)]
    docs = [doc for doc in models.get_many("workflow_runs", ids) if doc is not None][::-1]
    tasks = sorted({name for doc in docs for name in doc["tasks"]})
    return tasks, docs
