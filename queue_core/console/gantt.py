"""A workflow run as a Gantt chart: one bar per task attempt on a time axis, its wait before it and its outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

from markupsafe import Markup

from queue_core.console.humane import duration
from queue_core.timefmt import parse_utc

__all__ = ["Bar", "bars", "gantt_svg"]

# fill, stroke per kind of bar; "queued" is the wait drawn before each attempt.
KINDS = {
    "succeeded": ("#a5d6a7", "#2e7d32"),
    "failed": ("#ef9a9a", "#c62828"),
    "retried": ("#ffcc80", "#ef6c00"),
    "cancelled": ("#e0e0e0", "#616161"),
    "running": ("#90caf9", "#1565c0"),
    "queued": ("#fff59d", "#9e9d24"),
    "skipped": ("#f5f5f5", "#9e9e9e"),
}
LABEL_W, ROW_H, BAR_H, PLOT_W, AXIS_H = 190, 22, 14, 560, 26
SKIPPED_W = 6  # a skipped task has no time of its own: a small mark where the workflow gave it up


@dataclass(frozen=True)
class Bar:
    """One task attempt: when it became ready (queued or retry due), started and ended, and how it ended."""

    task: str
    run: str | None
    attempt: int
    ready: datetime
    started: datetime | None
    ended: datetime | None
    kind: str

    def seconds(self, now: datetime) -> tuple[float, float]:
        """Seconds waiting and seconds running."""
        start = self.started or self.ended or now
        waited = (start - self.ready).total_seconds()
        ran = ((self.ended or now) - self.started).total_seconds() if self.started else 0.0
        return max(0.0, waited), max(0.0, ran)


def _time(text: str | None) -> datetime | None:
    return parse_utc(text) if text else None


def _run_bars(task: str, doc: dict[str, Any]) -> list[Bar]:
    out: list[Bar] = []
    ready = parse_utc(doc["submitted_at"])
    attempts = doc["attempts"]
    for i, attempt in enumerate(attempts):
        ended = _time(attempt["finished_at"])
        status = attempt["status"]
        kind = {"SUCCEEDED": "succeeded", "CANCELLED": "cancelled", "RUNNING": "running"}.get(status, "failed")
        if kind == "failed" and (i + 1 < len(attempts) or doc["status"] == "PENDING"):
            kind = "retried"
        out.append(Bar(task, doc["id"], attempt["number"], ready, _time(attempt["started_at"]), ended, kind))
        ready = ended or ready
    if (
        not attempts and doc.get("array") is not None and doc["status"] != "PENDING"
    ):  # a run from before arrays has none
        # An array parent (a for-each task's too) runs no attempt of its own: one bar while its children go.
        kind = {"SUCCEEDED": "succeeded", "FAILED": "failed", "CANCELLED": "cancelled"}.get(doc["status"], "running")
        return [Bar(task, doc["id"], 1, ready, ready, _time(doc["finished_at"]), kind)]
    if doc["status"] == "PENDING" or (not attempts and doc["status"] == "CANCELLED"):
        # waiting for its (next) attempt, or cancelled before one started
        ended = _time(doc["finished_at"])
        kind = "cancelled" if doc["status"] == "CANCELLED" else "queued"
        out.append(Bar(task, doc["id"], len(attempts) + 1, ready, None, ended, kind))
    return out


def bars(view: dict[str, Any], runs: dict[str, dict[str, Any]]) -> list[Bar]:
    """Every attempt of every task's runs (reruns too), ordered by when each became ready; a task that never ran
    (skipped: upstream failed, or the run was cancelled first) as one mark at the time the workflow gave it up."""
    found: list[Bar] = []
    for name, task in view["tasks"].items():
        docs = [runs[r] for r in task["runs"] if r in runs]
        for doc in docs:
            found += _run_bars(name, doc)
        if not docs and task["status"] in ("UPSTREAM_FAILED", "CANCELLED", "SKIPPED"):
            when = _time(task["finished_at"]) or _time(view["finished_at"]) or _time(view["started_at"])
            if when is not None:
                found.append(Bar(name, None, 0, when, None, when, "skipped"))
    return sorted(found, key=lambda b: (b.ready, b.started or b.ready, b.task, b.attempt))


def gantt_svg(found: list[Bar], now: datetime) -> Markup:
    """The bars on one time axis, the wait before each attempt drawn lighter; each bar links to its run."""
    if not found:
        return Markup('<p class="empty" id="gantt">no task has been submitted yet</p>')
    start = min(b.ready for b in found)
    end = max(max((b.ended or b.started or now) for b in found), max(b.ready for b in found))
    span = max((end - start).total_seconds(), 1e-3)
    height = AXIS_H + len(found) * ROW_H + 8
    width = LABEL_W + PLOT_W + 20

    def x(moment: datetime) -> float:
        return LABEL_W + PLOT_W * (moment - start).total_seconds() / span

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="gantt" class="gantt" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family="sans-serif" font-size="11">'
    ]
    for share in (0.0, 0.25, 0.5, 0.75, 1.0):
        gx = LABEL_W + PLOT_W * share
        out.append(
            f'<line x1="{gx:.1f}" x2="{gx:.1f}" y1="{AXIS_H - 4}" y2="{height - 4}" stroke="#eeeeee"/>'
            f'<text x="{gx:.1f}" y="{AXIS_H - 8}" text-anchor="middle" fill="#757575">+{duration(span * share)}</text>'
        )
    for row, bar in enumerate(found):
        y = AXIS_H + row * ROW_H
        waited, ran = bar.seconds(now)
        label = bar.task if bar.kind == "skipped" else f"{bar.task} #{bar.attempt}"
        tip = f"{label}: {bar.kind}" + ("" if bar.kind == "skipped" else f", waited {duration(waited)}")
        tip += f", ran {duration(ran)}" if bar.started else ""
        parts = [
            f'<g class="gantt-bar" data-task="{escape(bar.task)}" data-attempt="{bar.attempt}" data-kind="{bar.kind}">'
            f"<title>{escape(tip)}</title>",
            f'<text x="{LABEL_W - 6}" y="{y + BAR_H - 2}" text-anchor="end" fill="#212121">{escape(label[:28])}</text>',
        ]
        top = y + (ROW_H - BAR_H) / 2 - 2
        if bar.kind == "skipped":
            fill, stroke = KINDS["skipped"]
            parts.append(
                f'<rect x="{x(bar.ready) - SKIPPED_W / 2:.1f}" y="{top:.1f}" width="{SKIPPED_W}" height="{BAR_H}" '
                f'fill="{fill}" stroke="{stroke}" stroke-dasharray="2 2"/>'
            )
        else:
            until = bar.started or bar.ended or now
            fill, stroke = KINDS["queued"]
            parts.append(
                f'<rect class="wait" x="{x(bar.ready):.1f}" y="{top + 3:.1f}" '
                f'width="{max(0.5, x(until) - x(bar.ready)):.1f}" height="{BAR_H - 6}" fill="{fill}" stroke="{stroke}" '
                'stroke-width="0.5"/>'
            )
            if bar.started is not None:
                fill, stroke = KINDS[bar.kind]
                parts.append(
                    f'<rect class="run" x="{x(bar.started):.1f}" y="{top:.1f}" '
                    f'width="{max(1.5, x(bar.ended or now) - x(bar.started)):.1f}" height="{BAR_H}" rx="2" '
                    f'fill="{fill}" stroke="{stroke}"/>'
                )
        parts.append("</g>")
        group = "".join(parts)
        out.append(f'<a href="/runs/{escape(bar.run)}">{group}</a>' if bar.run else group)
    out.append("</svg>")
    return Markup("\n".join(out))
