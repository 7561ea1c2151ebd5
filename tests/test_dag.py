"""The DAG algorithms on graphs as deep and wide as users make them: no recursion, the same answers."""

from __future__ import annotations

import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from queue_core.dag import descendants, find_cycle, levels


def _reference_levels(graph: dict[str, list[str]]) -> list[list[str]]:
    """Levels by their definition, repeated relaxation: a task sits one above its highest dependency."""
    depth = dict.fromkeys(graph, 0)
    for _ in graph:
        for task, deps in graph.items():
            depth[task] = max([depth[task], *(depth[d] + 1 for d in deps)])
    out: list[list[str]] = [[] for _ in range(1 + max(depth.values(), default=-1))]
    for task in sorted(graph):
        out[depth[task]].append(task)
    return out


def test_a_chain_far_deeper_than_the_recursion_limit_has_one_task_a_level():
    n = sys.getrecursionlimit() * 5
    graph = {f"t{i:06d}": [f"t{i - 1:06d}"] if i else [] for i in range(n)}
    assert find_cycle(graph) is None
    assert levels(graph) == [[f"t{i:06d}"] for i in range(n)]
    assert len(descendants(graph, ["t000000"])) == n - 1


def test_a_diamond_puts_the_join_above_its_longest_branch():
    graph = {"a": [], "b": ["a"], "c": ["b"], "d": ["a", "c"], "e": ["d", "d"]}
    assert levels(graph) == [["a"], ["b"], ["c"], ["d"], ["e"]]


@st.composite
def _dags(draw: st.DrawFn) -> dict[str, list[str]]:
    n = draw(st.integers(min_value=0, max_value=25))
    names = [f"n{i}" for i in range(n)]
    # Each task depends only on tasks before it: acyclic by construction, any shape (chains, fans, diamonds).
    return {name: draw(st.lists(st.sampled_from(names[:i]), max_size=4)) if i else [] for i, name in enumerate(names)}


@settings(max_examples=200, deadline=None)
@given(_dags())
def test_levels_agree_with_their_definition_on_any_dag(graph: dict[str, list[str]]):
    assert levels(graph) == _reference_levels(graph)
