"""A workflow run as an SVG picture: tasks in columns by level, edges between them, each box coloured by status."""

from __future__ import annotations

from html import escape
from typing import Any

from queue_core.dag import levels

__all__ = ["STATUS_COLOURS", "render_svg"]

# (fill, stroke) per task status; the console's stylesheet uses the same fills for its badges.
STATUS_COLOURS = {
    "SUCCEEDED": ("#c8e6c9", "#2e7d32"),
    "FAILED": ("#ffcdd2", "#c62828"),
    "UPSTREAM_FAILED": ("#ffe0b2", "#ef6c00"),
    "SKIPPED": ("#f5f5f5", "#9e9e9e"),
    "CANCELLED": ("#e0e0e0", "#616161"),
    "RUNNING": ("#bbdefb", "#1565c0"),
    "PENDING": ("#fff9c4", "#9e9d24"),
}
UNKNOWN = ("#ffffff", "#9e9e9e")
BOX_W, BOX_H = 190, 48
GAP_X, GAP_Y, MARGIN = 70, 16, 16
LEGEND_H = 30
MAX_NAME = 24


def _ordered_levels(graph: dict[str, list[str]]) -> list[list[str]]:
    """Levels, each ordered by the mean row of its upstream tasks (fewer crossings than by name)."""
    ordered: list[list[str]] = []
    row: dict[str, float] = {}
    for level in levels(graph):

        def key(task: str) -> tuple[float, str]:
            ups = [row[d] for d in graph[task] if d in row]
            return (sum(ups) / len(ups) if ups else 0.0, task)

        level = sorted(level, key=key)
        for i, task in enumerate(level):
            row[task] = i
        ordered.append(level)
    return ordered


def _label(task: dict[str, Any]) -> str:
    parts = [task["status"]]
    if task.get("attempts"):
        parts.append(f"{task['attempts']} attempt" + ("s" if task["attempts"] != 1 else ""))
    if task.get("duration") is not None:
        parts.append(f"{task['duration']:.1f}s")
    return " · ".join(parts)


def render_svg(view: dict[str, Any], link_runs: bool = True) -> str:
    """The SVG of a workflow run view (``Client.get_workflow_run``); each task links to its current run."""
    tasks = view["tasks"]
    graph = {name: list(task["depends_on"]) for name, task in tasks.items()}
    columns = _ordered_levels(graph)
    tallest = max((len(c) for c in columns), default=1)
    width = 2 * MARGIN + len(columns) * BOX_W + max(0, len(columns) - 1) * GAP_X
    height = 2 * MARGIN + tallest * BOX_H + max(0, tallest - 1) * GAP_Y
    where: dict[str, tuple[float, float]] = {}
    for col, level in enumerate(columns):
        offset = (height - 2 * MARGIN - (len(level) * BOX_H + (len(level) - 1) * GAP_Y)) / 2
        for row, name in enumerate(level):
            where[name] = (MARGIN + col * (BOX_W + GAP_X), MARGIN + offset + row * (BOX_H + GAP_Y))
    width = max(width, 640)  # room for the legend
    total_h = height + LEGEND_H
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dag" viewBox="0 0 {width:.0f} {total_h:.0f}" '
        f'width="{width:.0f}" height="{total_h:.0f}" font-family="sans-serif" font-size="12" '
        f'data-status="{escape(view["status"])}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#757575"/></marker></defs>',
    ]
    for name in sorted(tasks):
        x2, y2 = where[name]
        for dep in sorted(graph[name]):
            x1, y1 = where[dep]
            sx, sy, ex, ey = x1 + BOX_W, y1 + BOX_H / 2, x2, y2 + BOX_H / 2
            bend = (ex - sx) / 2
            out.append(
                f'<path class="edge" d="M{sx:.1f},{sy:.1f} C{sx + bend:.1f},{sy:.1f} {ex - bend:.1f},{ey:.1f} '
                f'{ex:.1f},{ey:.1f}" fill="none" stroke="#757575" stroke-width="1.3" marker-end="url(#arrow)"/>'
            )
    for name in sorted(tasks):
        task = tasks[name]
        x, y = where[name]
        fill, stroke = STATUS_COLOURS.get(task["status"], UNKNOWN)
        shown = name if len(name) <= MAX_NAME else name[: MAX_NAME - 1] + "…"
        tip = f"{name}: {task['status']}" + (f" ({task['reason']})" if task.get("reason") else "")
        node = (
            f'<g class="task" data-task="{escape(name)}" data-status="{escape(task["status"])}">'
            f"<title>{escape(tip)}</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="1.5"/>'
            f'<text x="{x + 10:.1f}" y="{y + 19:.1f}" font-weight="bold" fill="#212121">{escape(shown)}</text>'
            f'<text x="{x + 10:.1f}" y="{y + 36:.1f}" fill="#424242">{escape(_label(task))}</text></g>'
        )
        if link_runs and task.get("run"):
            node = f'<a href="/runs/{escape(task["run"])}">{node}</a>'
        out.append(node)
    lx = MARGIN
    for status, (fill, stroke) in STATUS_COLOURS.items():
        out.append(
            f'<rect x="{lx}" y="{height + 6}" width="12" height="12" rx="2" fill="{fill}" stroke="{stroke}"/>'
            f'<text x="{lx + 16}" y="{height + 16}" fill="#424242" font-size="10">{status}</text>'
        )
        lx += 16 + 7 * len(status) + 12
    out.append("</svg>")
    return "\n".join(out)
