"""A workflow run as an SVG picture: tasks in columns by level, edges between them, each box coloured by status.

A skipped task is a dashed box saying why; a branch's edge says which outcome it needs, dashed when not taken;
an array task (for-each too) counts its children by state under a strip of them."""

from __future__ import annotations

from html import escape
from typing import Any

from queue_core.dag import levels

__all__ = ["STATUS_COLOURS", "children_line", "render_svg"]

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
NOT_ENDED = ("#eceff1", "#90a4ae")  # as of a past point, children not ended then
BOX_W, BOX_H = 190, 62
GAP_X, GAP_Y, MARGIN = 70, 16, 16
LEGEND_H = 30
MAX_NAME = 24
MAX_NOTE = 30  # the third line: a skipped task's reason, an array task's counts (the whole in the tooltip)


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


def children_line(array: dict[str, Any]) -> str:
    """``4/8 SUCCEEDED · 1 FAILED``: how many of the children succeeded, then the other states."""
    counts, size = array["counts"], array["size"]
    others = [f"{n} {s.replace('_', ' ')}" for s, n in counts.items() if n and s != "SUCCEEDED"]
    return " · ".join([f"{counts.get('SUCCEEDED', 0)}/{size} SUCCEEDED", *others])


def _note(task: dict[str, Any], array: dict[str, Any] | None) -> str:
    """The box's third line: an array's counts, else why a task did not run or how a condition went."""
    if array is not None:
        return children_line(array)
    if task["status"] in ("SKIPPED", "UPSTREAM_FAILED", "FAILED") or task.get("outcome") is not None:
        # The dashed edge says which branch it was: the box keeps the words that fit.
        return (task.get("reason") or "").replace("Branch not taken: condition ", "not taken: ")
    return ""


def _clip(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def _strip(x: float, y: float, array: dict[str, Any]) -> str:
    """The children as one thin bar along the box's bottom, a segment per state in proportion."""
    size, left, out = max(array["size"], 1), x + 6, []
    width = BOX_W - 12
    for status, n in array["counts"].items():
        if not n:
            continue
        fill, stroke = STATUS_COLOURS.get(status, NOT_ENDED)
        w = width * n / size
        out.append(
            f'<rect class="child-seg" data-status="{escape(status)}" data-count="{n}" x="{left:.1f}" '
            f'y="{y + BOX_H - 9:.1f}" width="{w:.1f}" height="5" fill="{fill}" stroke="{stroke}" stroke-width="0.6"/>'
        )
        left += w
    return "".join(out)


def _edge(where: dict[str, tuple[float, float]], tasks: dict[str, Any], dep: str, name: str) -> str:
    x1, y1 = where[dep]
    x2, y2 = where[name]
    sx, sy, ex, ey = x1 + BOX_W, y1 + BOX_H / 2, x2, y2 + BOX_H / 2
    bend = (ex - sx) / 2
    branch = tasks[name].get("branches", {}).get(dep)  # a view from before branches has none
    outcome = tasks[dep].get("outcome")
    not_taken = branch is not None and outcome is not None and outcome != branch
    kind = "edge not-taken" if not_taken else "edge"
    dash = ' stroke-dasharray="5 4"' if not_taken else ""
    path = (
        f'<path class="{kind}" data-from="{escape(dep)}" data-to="{escape(name)}" d="M{sx:.1f},{sy:.1f} '
        f'C{sx + bend:.1f},{sy:.1f} {ex - bend:.1f},{ey:.1f} {ex:.1f},{ey:.1f}" fill="none" '
        f'stroke="{"#bdbdbd" if not_taken else "#757575"}" stroke-width="1.3"{dash} marker-end="url(#arrow)"/>'
    )
    if branch is None:
        return path
    mx, my = (sx + ex) / 2, (sy + ey) / 2 - 4
    return path + (
        f'<text class="branch" data-from="{escape(dep)}" data-to="{escape(name)}" x="{mx:.1f}" y="{my:.1f}" '
        f'text-anchor="middle" font-size="10" fill="{"#9e9e9e" if not_taken else "#424242"}">{escape(branch)}</text>'
    )


def render_svg(view: dict[str, Any], link_runs: bool = True, arrays: dict[str, dict[str, Any]] | None = None) -> str:
    """The SVG of a workflow run view (``Client.get_workflow_run``); each task links to its current run.

    ``arrays``: task -> ``{"size", "counts"}`` of the array tasks' current runs, drawn as their children.
    """
    arrays = arrays or {}
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
        for dep in sorted(graph[name]):
            out.append(_edge(where, tasks, dep, name))
    for name in sorted(tasks):
        out.append(_node(name, tasks[name], where[name], arrays.get(name), link_runs))
    lx = MARGIN
    for status, (fill, stroke) in STATUS_COLOURS.items():
        dash = ' stroke-dasharray="3 2"' if status == "SKIPPED" else ""
        out.append(
            f'<rect x="{lx}" y="{height + 6}" width="12" height="12" rx="2" fill="{fill}" stroke="{stroke}"{dash}/>'
            f'<text x="{lx + 16}" y="{height + 16}" fill="#424242" font-size="10">{status}</text>'
        )
        lx += 16 + 7 * len(status) + 12
    out.append("</svg>")
    return "\n".join(out)


def _node(name: str, task: dict[str, Any], at: tuple[float, float], array: dict[str, Any] | None, link: bool) -> str:
    x, y = at
    fill, stroke = STATUS_COLOURS.get(task["status"], UNKNOWN)
    skipped = task["status"] == "SKIPPED"
    note = _note(task, array)
    tip = f"{name}: {task['status']}" + (f" ({task['reason']})" if task.get("reason") else "")
    if array is not None:
        tip += f"; children {array['size']}: " + ", ".join(f"{n} {s}" for s, n in array["counts"].items() if n)
    dash = ' stroke-dasharray="5 3"' if skipped else ""
    style = ' font-style="italic"' if skipped else ""
    kind = "task array" if array is not None else "task"
    node = (
        f'<g class="{kind}" data-task="{escape(name)}" data-status="{escape(task["status"])}">'
        f"<title>{escape(tip)}</title>"
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{fill}" '
        f'stroke="{stroke}" stroke-width="1.5"{dash}/>'
        f'<text x="{x + 10:.1f}" y="{y + 18:.1f}" font-weight="bold" fill="#212121">'
        f"{escape(_clip(name, MAX_NAME))}</text>"
        f'<text x="{x + 10:.1f}" y="{y + 34:.1f}" fill="#424242"{style}>{escape(_label(task))}</text>'
    )
    if note:
        node += (
            f'<text class="note" x="{x + 10:.1f}" y="{y + 49:.1f}" fill="#616161" font-size="11"{style}>'
            f"{escape(_clip(note, MAX_NOTE))}</text>"
        )
    if array is not None:
        node += _strip(x, y, array)
    node += "</g>"
    if link and task.get("run"):
        node = f'<a href="/runs/{escape(task["run"])}">{node}</a>'
    return node
