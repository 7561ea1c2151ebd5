"""The overview, the console's home: runs by status over a day and a week, each cluster's queue and running runs,
the slowest and most failing definitions, the schedules about to fire and what is quarantined."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from queue_core.console.charts import status_chart
from queue_core.console.insights import RECENT_SAMPLE, definition_stats, running_by_cluster, status_histogram
from queue_core.console.rendering import console_of, render
from queue_core.errors import InvalidInput
from queue_core.readmodels.oracle import quarantine_line

__all__ = ["overview"]

TOP = 5  # rows of the slowest and most failing definitions
SOON = 6  # schedules about to fire
GIVEN_UP_LOOKED_AT = 500  # the newest notifications given up the overview groups by destination
DAY_BUCKETS, DAY_WIDTH = 24, 3600
WEEK_BUCKETS, WEEK_WIDTH = 28, 6 * 3600
LIVE_INTERVAL_MS = 2000  # the overview redraws at most every 2 s: its counts need no finer grain


def _queue_depth(redis: Any, cluster: str) -> int:
    from rq import Queue

    return int(Queue(cluster, connection=redis).count)


def overview(request: Request) -> Response:
    if request.query_params.get("as_of", "").strip():
        raise InvalidInput("the overview shows the present: open the runs or the audit log as of a point", "as_of")
    client = console_of(request).client
    models = client.read_models
    models.catch_up()
    now = datetime.now(UTC)
    day = status_histogram(models, now, DAY_BUCKETS, DAY_WIDTH)
    week = status_histogram(models, now, WEEK_BUCKETS, WEEK_WIDTH)
    stats = definition_stats(models)
    slowest = sorted((s for s in stats if s.median is not None), key=lambda s: (-(s.median or 0), s.name))[:TOP]
    failing = sorted((s for s in stats if s.failed), key=lambda s: (-s.failure_rate, -s.failed, s.name))[:TOP]
    running = running_by_cluster(models)
    clusters = [
        {"name": c["name"], "queued": _queue_depth(client.redis, c["name"]), "running": running.get(c["name"], 0)}
        for c in client.list_clusters()
    ]
    upcoming = sorted(
        (s for s in client.list_schedules() if s["status"] == "ACTIVE" and s["next_fire"]), key=lambda s: s["next_fire"]
    )[:SOON]
    return render(
        request,
        "overview.html",
        active="/",
        as_of="",
        notice=None,
        quarantined=[],  # shown in its own section here, not as the banner
        quarantined_here=[quarantine_line(entry) for entry in models.quarantined()],
        day_chart=status_chart(day, 3, "%H:%M", "/runs"),
        week_chart=status_chart(week, 4, "%a %d", "/runs"),
        day=day,
        week=week,
        slowest=slowest,
        failing=failing,
        sample=RECENT_SAMPLE,
        clusters=clusters,
        upcoming=upcoming,
        failing_destinations=failing_destinations(client),
        live="any",
        live_interval=LIVE_INTERVAL_MS,
    )


def failing_destinations(client: Any) -> list[str]:
    """Each destination with deliveries given up (among the newest ``GIVEN_UP_LOOKED_AT``), with how many."""
    counts: dict[str, int] = {}
    for notification in client.notifications(failed=True, limit=GIVEN_UP_LOOKED_AT):
        counts[notification["destination"]] = counts.get(notification["destination"], 0) + 1
    return [f"{destination}: {n} given up" for destination, n in sorted(counts.items())]
