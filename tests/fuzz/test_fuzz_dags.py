"""Random DAG shapes (chains, fans, diamonds, and some that break the rules) through apply, dry run, run, status,
graph and the console's page: each is accepted and served, or refused in one line; the console answers 400,
never 500, to bad query parameters."""

from __future__ import annotations

import contextlib
import io
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from queue_core import Client
from queue_core.cli.main import main
from queue_core.errors import JobledgerError
from queue_core.specs.workflows import MAX_DEPTH, MAX_TASKS
from tests.support.console_http import request
from tests.support.fuzzing import EXAMPLES, SEED
from tests.support.processes import Procs
from tests.support.servers import start_server

JOB = {"type": "SHELL", "source": {"type": "WORKSPACE", "sourceDef": {"path": "."}}, "sourceLocation": "t.sh"}


@st.composite
def dags(draw: st.DrawFn) -> dict[str, list[str]]:
    """Task -> its dependencies: a random DAG (each task depends on earlier ones), sometimes broken on purpose."""
    shape = draw(st.sampled_from(["random", "chain", "fan", "diamonds", "cycle", "unknown", "too-deep"]))
    size = draw(st.integers(1, 40))
    names = [f"t{i}" for i in range(size)]
    if shape == "chain":
        graph = {name: names[i - 1 : i] for i, name in enumerate(names)}
    elif shape == "fan":
        graph = {name: ([] if i == 0 else ["t0"]) for i, name in enumerate(names)}
        graph["sink"] = names[1:] or ["t0"]
    elif shape == "diamonds":
        graph = {name: names[max(0, i - 3) : i] for i, name in enumerate(names)}
    elif shape == "too-deep":
        deep = [f"t{i}" for i in range(MAX_DEPTH + 1)]
        graph = {name: deep[i - 1 : i] for i, name in enumerate(deep)}
    else:
        graph = {
            name: sorted(set(draw(st.lists(st.sampled_from(names[:i]), max_size=4)))) if i else []
            for i, name in enumerate(names)
        }
    if shape == "cycle":
        graph["t0"] = [names[-1]]
    elif shape == "unknown":
        graph[names[-1]] = [*graph[names[-1]], "nowhere"]
    return graph


def _workflow(name: str, graph: dict[str, list[str]]) -> dict[str, Any]:
    return {"name": name, "tasks": {task: {"job": JOB, "depends_on": deps} for task, deps in graph.items()}}


@pytest.fixture
def console(procs: Procs) -> str:
    env = {k: v for k, v in procs.env.items() if not k.startswith("JOBLEDGER_CONSOLE_TOKEN")}
    return start_server(procs, "console", name="console", env=env)[1]


def _cli(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, err.getvalue()


@seed(SEED)
@settings(max_examples=max(50, EXAMPLES // 4), deadline=None, suppress_health_check=list(HealthCheck))
@given(graph=dags())
def test_a_dag_is_served_everywhere_or_refused_in_one_line(
    client: Client, workspace: Path, console: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, graph
):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    (workspace / "t.sh").write_text("true\n")
    try:
        client.apply_workflow(_workflow("w", graph))
    except JobledgerError as exc:
        assert "\n" not in str(exc)
        assert len(graph) > MAX_TASKS or any(w in str(exc) for w in ("cycle", "unknown task", "levels deep"))
        return
    plan = client.plan_workflow("w")
    assert sum(len(level) for level in plan.levels) == len(graph)
    run = client.run_workflow("w")
    assert set(client.get_workflow_run(run)["tasks"]) == set(graph)
    for argv in (("workflow", "status", run), ("workflow", "graph", run), ("workflow", "run", "w", "--dry-run")):
        code, err = _cli(*argv)
        assert code == 0, (argv, err)
    for path in (f"/workflow-runs/{run}", f"/workflow-runs/{run}/graph.svg", "/workflows/w"):
        assert request(console, path).status == 200, path


PARAMS = st.dictionaries(
    st.sampled_from(["status", "limit", "offset", "as_of", "after", "definition", "workflow", "done", "all", "page"]),
    st.one_of(
        st.text(max_size=30),
        st.sampled_from(["9" * 400, "-1", "0", "1e309", "99999999999999999999999-0", "\x00", "%ff", "\udcff"]),
    ),
    max_size=3,
)
PAGES = st.sampled_from(["/runs", "/workflows", "/definitions", "/schedules", "/clusters", "/events", "/runs/x/logs"])


@seed(SEED)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(page=PAGES, params=PARAMS)
def test_the_console_answers_bad_query_parameters_with_400_never_500(console: str, page: str, params: dict[str, str]):
    query = urllib.parse.urlencode(params, errors="surrogateescape")
    reply = request(console, f"{page}?{query}")
    assert reply.status in (200, 400, 404), (page, params, reply.status, reply.body[:300])
