"""Directed acyclic graphs of named tasks: cycles, levels, what lies downstream."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

__all__ = ["ancestors", "descendants", "downstream_map", "find_cycle", "levels"]

Graph = Mapping[str, Sequence[str]]  # task -> the tasks it depends on


def find_cycle(graph: Graph) -> list[str] | None:
    """One cycle as a path that ends where it starts (``[a, b, c, a]``), or None if the graph is acyclic.

    Tasks are visited in sorted order, so the same graph always names the same cycle.
    """
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    for root in sorted(graph):
        if colour[root] != white:
            continue
        path: list[str] = [root]
        stack: list[Iterator[str]] = [iter(sorted(graph[root]))]
        colour[root] = grey
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                colour[path.pop()] = black
                stack.pop()
                continue
            if colour.get(nxt, black) == grey:
                # ``path`` runs along "depends on" edges; read forwards, a cycle is the reverse.
                cycle = [*path[path.index(nxt) :], nxt]
                return list(reversed(cycle))
            if colour.get(nxt) == white:
                colour[nxt] = grey
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def levels(graph: Graph) -> list[list[str]]:
    """Tasks by level: level 0 depends on nothing, level n on tasks of lower levels only (sorted by name).

    Iterative (Kahn's order), so a chain as deep as a user makes it costs no recursion; ``graph`` must be
    acyclic (``find_cycle`` first).
    """
    waiting = {task: len(set(deps)) for task, deps in graph.items()}
    children = downstream_map(graph)
    depth: dict[str, int] = {}
    ready = [task for task, n in waiting.items() if n == 0]
    for task in ready:
        depth[task] = 0
    while ready:
        task = ready.pop()
        for child in set(children[task]):
            depth[child] = max(depth.get(child, 0), depth[task] + 1)
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    out: list[list[str]] = [[] for _ in range(1 + max(depth.values(), default=-1))]
    for task in sorted(depth):
        out[depth[task]].append(task)
    return out


def downstream_map(graph: Graph) -> dict[str, list[str]]:
    """Task -> the tasks that depend on it directly."""
    children: dict[str, list[str]] = {task: [] for task in graph}
    for task in sorted(graph):
        for dep in graph[task]:
            children[dep].append(task)
    return children


def descendants(graph: Graph, roots: Iterable[str]) -> set[str]:
    """Every task downstream of ``roots`` (the roots not included unless downstream of another root)."""
    children = downstream_map(graph)
    return _reachable(children, [c for r in roots for c in children[r]])


def ancestors(graph: Graph, task: str) -> set[str]:
    """Every task ``task`` waits for, directly or not."""
    return _reachable(graph, graph[task])


def _reachable(edges: Graph, starts: Iterable[str]) -> set[str]:
    """``starts`` and every task reached from them along ``edges``; iterative, however long the chain."""
    seen: set[str] = set()
    todo = list(starts)
    while todo:
        task = todo.pop()
        if task not in seen:
            seen.add(task)
            todo.extend(edges[task])
    return seen
