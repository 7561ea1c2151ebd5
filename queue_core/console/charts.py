"""Charts drawn on the server as SVG (no script, no library): runs by status over time, durations with median/p95."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from html import escape
from typing import Any

from markupsafe import Markup

from queue_core.console.dag_svg import STATUS_COLOURS, UNKNOWN
from queue_core.console.humane import duration
from queue_core.console.insights import Histogram, run_seconds
from queue_core.domain.runs import STATUSES

__all__ = ["duration_chart", "status_chart"]

WIDTH, HEIGHT = 720, 170
LEFT, BOTTOM, TOP = 44, 22, 8
STACK_ORDER = ("SUCCEEDED", "FAILED", "CANCELLED", "RUNNING", "PENDING")  # ended at the bottom


def _svg(width: int, height: int, label: str, body: list[str], css: str) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {css}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(label)}" font-family="sans-serif" '
        'font-size="10">'
    )
    return Markup("\n".join([head, *body, "</svg>"]))


def _axis(plot_h: float, top: float, high: float, fmt: Callable[[float], str]) -> list[str]:
    out = []
    for share in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - share)
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - 4}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eeeeee"/>')
        out.append(f'<text x="{LEFT - 4}" y="{y + 3:.1f}" text-anchor="end" fill="#757575">{fmt(high * share)}</text>')
    return out


def status_chart(histogram: Histogram, label_every: int, time_format: str, runs_link: str = "/runs") -> Markup:
    """A stacked bar per bucket, one colour per status; each segment links to the runs it counts."""
    buckets = len(histogram.edges) - 1
    totals = [sum(histogram.counts[s][i] for s in STATUSES) for i in range(buckets)]
    high = max(totals, default=0) or 1
    plot_w, plot_h = WIDTH - LEFT - 4, HEIGHT - BOTTOM - TOP
    step = plot_w / max(1, buckets)
    body = _axis(plot_h, TOP, high, lambda v: f"{v:,.0f}")
    for i in range(buckets):
        x, y = LEFT + i * step, float(TOP + plot_h)
        start = datetime.fromtimestamp(histogram.edges[i] / 1e6, UTC)
        end = datetime.fromtimestamp(histogram.edges[i + 1] / 1e6, UTC)
        since, until = start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ")
        for status in STACK_ORDER:
            count = histogram.counts[status][i]
            if not count:
                continue
            h = plot_h * count / high
            y -= h
            fill, stroke = STATUS_COLOURS.get(status, UNKNOWN)
            href = f"{runs_link}?status={status}&amp;since={since}&amp;until={until}"
            tip = f"{count:,} {status.lower()} submitted {start:%Y-%m-%d %H:%M} to {end:%H:%M} UTC"
            body.append(
                f'<a href="{href}"><rect class="bar" data-status="{status}" data-count="{count}" x="{x + 1:.1f}" '
                f'y="{y:.1f}" width="{max(1.0, step - 2):.1f}" height="{h:.1f}" fill="{fill}" stroke="{stroke}" '
                f'stroke-width="0.6"><title>{escape(tip)}</title></rect></a>'
            )
        if i % label_every == 0:
            body.append(
                f'<text x="{x + step / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle" fill="#757575">'
                f"{start.strftime(time_format)}</text>"
            )
    return _svg(WIDTH, HEIGHT, f"{histogram.total:,} runs by status", body, "status-chart")


def duration_chart(runs: list[dict[str, Any]], median: float | None, p95: float | None) -> Markup:
    """One point per ended run (oldest left), its height its duration; dashed lines at the median and p95."""
    points = [(doc, s) for doc in runs if (s := run_seconds(doc)) is not None]
    high = max((s for _, s in points), default=0.0) or 1.0
    plot_w, plot_h = WIDTH - LEFT - 90, HEIGHT - BOTTOM - TOP
    step = plot_w / max(1, len(runs))
    slot = {doc["id"]: i for i, doc in enumerate(runs)}
    body = _axis(plot_h, TOP, high, duration)
    for name, value in (("median", median), ("p95", p95)):
        if value is None:
            continue
        y = TOP + plot_h * (1 - value / high)
        body.append(
            f'<line class="{name}" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#5c6bc0" '
            f'stroke-dasharray="{"4 3" if name == "median" else "2 2"}"/>'
            f'<text x="{LEFT + plot_w + 4}" y="{y + (9 if name == "median" else -2):.1f}" fill="#3949ab">'
            f"{name} {duration(value)}</text>"
        )
    for doc, seconds in points:
        x = LEFT + (slot[doc["id"]] + 0.5) * step
        y = TOP + plot_h * (1 - seconds / high)
        fill, stroke = STATUS_COLOURS.get(doc["status"], UNKNOWN)
        tip = f"{doc['id'][:8]} {doc['status']} in {duration(seconds)}"
        body.append(
            f'<a href="/runs/{escape(doc["id"])}"><circle class="point" data-run="{escape(doc["id"])}" '
            f'cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{fill}" stroke="{stroke}"><title>{escape(tip)}</title>'
            "</circle></a>"
        )
    if not points:
        body.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#9e9e9e">no ended runs</text>')
    return _svg(WIDTH, HEIGHT, f"durations of {len(points)} runs", body, "duration-chart")
