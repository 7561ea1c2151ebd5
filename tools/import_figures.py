"""Print the import structure's figures as JSON: levels (longest chain), circles, imports pointing up a layer.

    python tools/import_figures.py            # the packages of this checkout

A level is a module's height in the import graph, each circle counted as one node (1: imports nothing
of ours); circles are strongly connected groups of modules; an import points up when it goes from a
lower layer of the contract in pyproject.toml to a higher one (or, with no contract, see the imports
inside circles: each circle has at least one import pointing back up).
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import grimp

ROOTS = ("queue_core", "workers", "scheduler")


def _layers(root: Path) -> list[list[str]]:
    config = tomllib.loads((root / "pyproject.toml").read_text())
    for contract in config.get("tool", {}).get("importlinter", {}).get("contracts", []):
        if contract["type"] == "layers":
            return [[m.strip() for m in layer.replace("|", ":").split(":")] for layer in contract["layers"]]
    return []


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def main() -> int:
    root = Path.cwd()
    sys.path.insert(0, str(root))
    imports = grimp.build_graph(*ROOTS)
    modules = sorted(m for m in imports.modules if m.split(".")[0] in ROOTS)
    graph = {m: {i for i in imports.find_modules_directly_imported_by(m) if i in modules} for m in modules}
    circles = _circles(graph)
    # Levels are counted on the graph with each circle drawn as one node: the height of the tallest chain.
    node_of = {m: m for m in modules} | {m: c[0] for c in circles for m in c}
    condensed: dict[str, set[str]] = {}
    for a in modules:
        condensed.setdefault(node_of[a], set()).update(node_of[b] for b in graph[a] if node_of[b] != node_of[a])
    height: dict[str, int] = {}
    for start in sorted(condensed):
        todo = [start]
        while todo:
            current = todo[-1]
            pending = [d for d in condensed[current] if d not in height]
            if pending:
                todo.extend(pending)
                continue
            todo.pop()
            height[current] = 1 + max((height[d] for d in condensed[current]), default=0)
    in_circles = sum(1 for a in modules for b in graph[a] if node_of[a] == node_of[b])
    layers = _layers(root)

    def layer_of(module: str) -> int | None:
        for rank, members in enumerate(reversed(layers)):
            if any(module == m or module.startswith(m + ".") for m in members):
                return rank
        return None

    up = [
        f"{a} -> {b}"
        for a in modules
        for b in sorted(graph[a])
        if layer_of(a) is not None and layer_of(b) is not None and layer_of(b) > layer_of(a)  # type: ignore[operator]
    ]
    print(
        json.dumps(
            {
                "modules": len(modules),
                "imports": sum(len(v) for v in graph.values()),
                "levels": max(height.values(), default=0),
                "circles": len(circles),
                "circle_members": circles,
                "imports_inside_circles": in_circles,
                "imports_pointing_up": len(up),
                "up": up,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
