"""Pictures of a workflow run: a tree for the terminal, Mermaid and Graphviz dot for documents."""

from __future__ import annotations

import json
from typing import Any

from queue_core.dag import downstream_map

__all__ = ["render_dot", "render_mermaid", "render_tree"]

_COLOURS = {
    "SUCCEEDED": "#c8e6c9",
    "FAILED": "#ffcdd2",
    "UPSTREAM_FAILED": "#ffe0b2",
    "SKIPPED": "#f5f5f5",
    "CANCELLED": "#e0e0e0",
    "RUNNING": "#bbdefb",
    "PENDING": "#fff9c4",
}


def _line(name: str, task: dict[str, Any]) -> str:
    parts = [name, task["status"]]
    if task.get("title"):  # a DataOS entry's title (a view from before titles has no key)
        parts.insert(1, f'"{task["title"]}"')
    if task["reason"]:
        parts.append(f"({task['reason']})")
    if task["attempts"]:
        parts.append(f"{task['attempts']} attempt" + ("s" if task["attempts"] != 1 else ""))
    if task["duration"] is not None:
        parts.append(f"{task['duration']:.1f}s")
    if len(task["runs"]) > 1:
        parts.append(f"run {len(task['runs'])}")
    if task.get("values"):  # a view from before task values has none
        parts.append("values " + json.dumps(task["values"], separators=(",", ":"))[:80])
    return "  ".join(parts)


def render_tree(view: dict[str, Any]) -> list[str]:
    """The DAG as an indented tree from its roots; a task with several upstreams is drawn once, then named."""
    header = f"{view['workflow']} (version {view['workflow_version']})  {view['status']}"
    if view["reason"]:
        header += f"  ({view['reason']})"
    lines = [header, f"workflow run {view['id']}  logical date {view['logical_date']}"]
    if view.get("title"):
        lines.insert(1, f"title: {view['title']}")
    children = downstream_map({name: task["depends_on"] for name, task in view["tasks"].items()})
    drawn: set[str] = set()

    def draw(name: str, prefix: str, last: bool) -> None:
        branch = "└── " if last else "├── "
        if name in drawn:
            lines.append(f"{prefix}{branch}{name}  (drawn above)")
            return
        drawn.add(name)
        lines.append(prefix + branch + _line(name, view["tasks"][name]))
        below = children[name]
        for i, child in enumerate(below):
            draw(child, prefix + ("    " if last else "│   "), i == len(below) - 1)

    roots = [name for name in sorted(view["tasks"]) if not view["tasks"][name]["depends_on"]]
    for i, root in enumerate(roots):
        draw(root, "", i == len(roots) - 1)
    return lines


def render_mermaid(view: dict[str, Any]) -> str:
    """A Mermaid flowchart: one node per task with its status, coloured by status."""
    ids = {name: f"t{i}" for i, name in enumerate(sorted(view["tasks"]))}
    lines = ["flowchart TD"]
    for name, node in ids.items():
        status = view["tasks"][name]["status"]
        lines.append(f'    {node}["{name}<br/>{status}"]:::{status.lower()}')
    for name in sorted(view["tasks"]):
        for dep in view["tasks"][name]["depends_on"]:
            lines.append(f"    {ids[dep]} --> {ids[name]}")
    for status, colour in _COLOURS.items():
        lines.append(f"    classDef {status.lower()} fill:{colour}")
    return "\n".join(lines)


def render_dot(view: dict[str, Any]) -> str:
    """A Graphviz digraph: one filled node per task with its status."""
    lines = [f'digraph "{view["workflow"]}" {{', "    rankdir=LR;", "    node [shape=box, style=filled];"]
    for name in sorted(view["tasks"]):
        status = view["tasks"][name]["status"]
        colour = _COLOURS.get(status, "#ffffff")
        lines.append(f'    "{name}" [label="{name}\\n{status}", fillcolor="{colour}"];')
    for name in sorted(view["tasks"]):
        for dep in view["tasks"][name]["depends_on"]:
            lines.append(f'    "{dep}" -> "{name}";')
    lines.append("}")
    return "\n".join(lines)
