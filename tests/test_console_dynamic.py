"""The console's pages of dynamic work over HTTP, with real runs on real workers: an array job's children (counts,
pages, a filter, a child's place), an array task and a branch not taken in a workflow run, and backfills."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from queue_core import Client
from queue_core.console.auth import ConsoleToken
from queue_core.console.dag_svg import children_line, render_svg
from queue_core.domain.arrays import child_id
from scheduler.follow_ups import FollowUps
from tests.support.console_http import request
from tests.support.console_inprocess import console_in_thread
from tests.support.jobs import definition, job_file, native, shell_task
from tests.support.processes import Procs, eventually

pytestmark = pytest.mark.fleet(workers=2)

TOKEN = "dynamic-views-token"


@pytest.fixture
def console(client: Client) -> Iterator[str]:
    with console_in_thread(client, ConsoleToken(TOKEN)) as base:
        yield base


def _bar(body: str, bar_id: str) -> dict[str, int]:
    """A count bar's segments: state -> count."""
    found = re.search(rf'<div class="countbar" id="{bar_id}"[^>]*>(.*?)</div>', body, re.S)
    assert found, bar_id
    return {s: int(n) for s, n in re.findall(r'data-status="(\w+)" data-count="(\d+)"', found.group(1))}


def _children(body: str) -> list[tuple[int, str]]:
    return [(int(i), s) for i, s in re.findall(r'<tr data-index="(\d+)" data-child="[^"]+" data-status="(\w+)">', body)]


def _error(body: str) -> str:
    shown = re.search(r'<p class="error" id="error">([^<]*)</p>', body)
    return shown.group(1) if shown else ""


def test_an_array_parent_counts_its_children_pages_and_filters_them_and_a_child_links_back(
    client: Client, workspace: Path, fleet: Procs, console: str
):
    job_file(workspace, "some-fail.sh", 'case "$JOBLEDGER_ARRAY_INDEX" in 2|7) exit 3;; esac\n')
    client.define(definition("shards", "some-fail.sh"))
    parent = client.submit("shards", array=12)
    assert client.wait(parent, timeout=60)["array"]["counts"]["FAILED"] == 2

    page = request(console, f"/runs/{parent}").body
    assert _bar(page, "children-bar") == {"SUCCEEDED": 10, "FAILED": 2}
    assert "<dd>12: 10 SUCCEEDED, 2 FAILED" in page
    assert [i for i, _ in _children(page)] == list(range(12))
    assert all(f'href="/runs/{child_id(parent, i)}"' in page for i in range(12))

    failed = request(console, f"/runs/{parent}?status=FAILED").body
    assert _children(failed) == [(2, "FAILED"), (7, "FAILED")]

    first = request(console, f"/runs/{parent}?size=5").body
    assert [i for i, _ in _children(first)] == [0, 1, 2, 3, 4]
    assert 'id="children-last" href="?size=5&amp;start=10#children"' in first
    after = re.search(r'id="children-next" href="([^"#]+)', first).group(1).replace("&amp;", "&")
    second = request(console, f"/runs/{parent}{after}").body
    assert [i for i, _ in _children(second)] == [5, 6, 7, 8, 9]
    assert 'id="children-previous" href="?size=5#children"' in second

    listed = request(console, "/runs?definition=shards").body  # each child told apart from its siblings
    assert (
        f'<a href="/runs/{child_id(parent, 7)}"><code title="{child_id(parent, 7)}">{parent[:8]}</code>_7</a>' in listed
    )
    assert f'<a class="sub" href="/runs/{parent}#children">12 children</a>' in listed

    child = request(console, f"/runs/{child_id(parent, 7)}").body
    place = re.search(r'<dd id="array-parent">(.*?)</dd>', child).group(1)
    assert f'href="/runs/{parent}"' in place and "child 7 of 12" in place
    assert f'href="/runs/{child_id(parent, 6)}"' in place and f'href="/runs/{child_id(parent, 8)}"' in place

    expanded = next(e for e in client.events(aggregate=parent) if e.type == "RunArrayExpanded")
    then = request(console, f"/runs/{parent}?as_of={expanded.position}").body
    assert _bar(then, "children-bar") == {"NOT_ENDED": 12}  # nothing had ended at that point
    assert [s for _, s in _children(then)] == ["PENDING"] * 12

    before = client.store.length()
    for path, status, message in (
        (f"/runs/{parent}?status=DONE", 400, "status: &#39;DONE&#39; is not one of"),
        (f"/runs/{parent}?start=-5", 400, "start: must be a whole number, 0 or more"),
        (f"/runs/{parent}?as_of={expanded.position}&status=FAILED", 400, "children are not filtered by state"),
    ):
        reply = request(console, path)
        assert reply.status == status and message in _error(reply.body), path
    assert client.store.length() == before


def test_a_workflow_run_draws_its_array_task_counts_and_the_branch_not_taken(
    client: Client, workspace: Path, fleet: Procs, console: str
):
    tasks = {
        "shards": {**shell_task(workspace, "shard"), "array": 4},
        "check": {"condition": "1 > 2", "depends_on": ["shards"]},
        "load": {**shell_task(workspace, "load"), "depends_on": ["check:true"]},
        "nothing": {**shell_task(workspace, "nothing"), "depends_on": ["check:false"]},
    }
    client.apply_workflow(native("branchy", tasks))
    view = client.wait_workflow_run(client.run_workflow("branchy"), timeout=60)
    assert view["tasks"]["load"]["status"] == "SKIPPED" and view["tasks"]["nothing"]["status"] == "SUCCEEDED"

    page = request(console, f"/workflow-runs/{view['id']}").body
    svg = request(console, f"/workflow-runs/{view['id']}/graph.svg").body
    for drawn in (page, svg):
        shards = re.search(r'<g class="task array" data-task="shards" data-status="SUCCEEDED">(.*?)</g>', drawn).group(
            1
        )
        assert ">4/4 SUCCEEDED</text>" in shards
        assert re.findall(r'class="child-seg" data-status="(\w+)" data-count="(\d+)"', shards) == [("SUCCEEDED", "4")]
        load = re.search(r'<g class="task" data-task="load" data-status="SKIPPED">(.*?)</g>', drawn).group(1)
        assert 'stroke-dasharray="5 3"' in load and ">not taken: check is false</text>" in load
        assert "<title>load: SKIPPED (Branch not taken: condition check is false)</title>" in load
        assert '<path class="edge not-taken" data-from="check" data-to="load"' in drawn
        assert '<path class="edge" data-from="check" data-to="nothing"' in drawn
        assert re.search(r'<text class="branch" data-from="check" data-to="load"[^>]*>true</text>', drawn)
        assert re.search(r'<text class="branch" data-from="check" data-to="nothing"[^>]*>false</text>', drawn)
    row = re.search(r'<tr class="t-SKIPPED" data-task-row="load">(.*?)</tr>', page, re.S).group(1)
    assert "Branch not taken: condition check is false" in row and "check<span" in row
    shards_run = view["tasks"]["shards"]["run"]
    assert f'<a href="/runs/{shards_run}#children" data-children="shards">4/4 SUCCEEDED</a>' in page
    assert re.search(r'<g class="gantt-bar" data-task="shards" data-attempt="1" data-kind="succeeded">', page)
    expanded = next(e for e in client.events(aggregate=shards_run) if e.type == "RunArrayExpanded")
    then = request(console, f"/workflow-runs/{view['id']}?as_of={expanded.position}").body
    assert re.search(r'data-task="shards" data-status="RUNNING">.*?>0/4 SUCCEEDED · 4 NOT ENDED</text>', then)


def test_the_backfill_pages_show_range_progress_and_runs_and_cancel_needs_the_token(
    client: Client, workspace: Path, fleet: Procs, console: str
):
    client.define(definition("daily", job_file(workspace, "day.sh", 'case "$1" in 2026-11-20T01:*) exit 1;; esac\n')))
    client.create_schedule("hourly", definition="daily", cron="0 * * * *", args="${logical_date}")
    scheduler = FollowUps(client)
    done = client.backfill_schedule("hourly", "2026-11-20T00:00:00Z", "2026-11-20T03:00:00Z", max_active=2)

    def finished() -> bool:
        scheduler.run_pass()
        return client.get_backfill(done["id"])["status"] == "FINISHED"

    eventually(finished, timeout=60, what="the backfill to finish")
    held = client.backfill_schedule("hourly", "2026-11-21T00:00:00Z", "2026-11-21T05:00:00Z", backwards=True)

    listed = request(console, "/backfills").body
    assert f'<tr data-backfill="{held["id"]}">' in listed and f'<tr data-backfill="{done["id"]}">' in listed
    assert listed.index(held["id"]) < listed.index(done["id"])  # newest first
    assert '<a href="/backfills" class="active">Backfills</a>' in listed

    page = request(console, f"/backfills/{done['id']}").body
    assert "2026-11-20T00:00:00Z .. 2026-11-20T03:00:00Z" in page and "oldest tick first" in page
    assert "<dd>2 at once</dd>" in page and "<dd>none <span" in page
    assert _bar(page, "progress") == {"SUCCEEDED": 3, "FAILED": 1}
    runs = {e["tick"]: e["run"] for e in client.get_backfill(done["id"])["runs"]}
    rows = re.findall(r'<tr data-tick="([^"]+)" data-state="(\w+)">.*?href="/runs/([0-9a-f-]{36})"', page, re.S)
    assert [(tick, run) for tick, _, run in rows] == list(runs.items())
    failed = request(console, f"/backfills/{done['id']}?status=FAILED").body
    assert re.findall(r'<tr data-tick="([^"]+)" data-state="(\w+)">', failed) == [("2026-11-20T01:00:00Z", "FAILED")]
    cause = request(console, f"/runs/{runs['2026-11-20T00:00:00Z']}").body
    assert f'<dd id="run-cause"><a href="/backfills/{done["id"]}">' in cause

    schedule = request(console, "/schedules/hourly").body
    assert f'href="/backfills/{done["id"]}"' in schedule and f'href="/backfills/{held["id"]}"' in schedule
    audit = request(console, "/events?type=BackfillStarted").body
    assert f'href="/backfills/{done["id"]}"' in audit

    waiting = request(console, f"/backfills/{held['id']}").body
    assert "newest tick first" in waiting and _bar(waiting, "progress") == {"WAITING": 6}
    assert re.findall(r'<tr data-tick="([^"]+)"', waiting)[0] == "2026-11-21T05:00:00Z"
    before = client.store.length()
    assert request(console, f"/backfills/{held['id']}/cancel", form={}).status == 403
    assert client.store.length() == before
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    cancelled = request(console, f"/backfills/{held['id']}/cancel", form={}, headers=bearer)
    assert cancelled.status == 303 and cancelled.headers["location"] == f"/backfills/{held['id']}?done=cancelled"
    shown = request(console, cancelled.headers["location"]).body
    assert 'id="notice">Backfill cancelled' in shown and 'id="cancel"' not in shown
    assert 'id="backfill-status"><span class="status s-CANCELLED">' in shown
    assert client.get_backfill(held["id"])["status"] == "CANCELLED"
    again = request(console, f"/backfills/{held['id']}/cancel", form={}, headers=bearer)
    assert again.status == 400 and "nothing to cancel" in _error(again.body)

    before = client.store.length()
    for path, status, message in (
        ("/backfills/not-a-backfill", 404, "no backfill"),
        (f"/backfills/{done['id']}?status=LATE", 400, "status: &#39;LATE&#39; is not one of"),
        (f"/backfills/{done['id']}?size=0", 400, "size: must be a whole number from 1 to 200"),
        ("/backfills?as_of=1-0", 400, "as_of: a backfill is shown as it is now"),
    ):
        reply = request(console, path)
        assert reply.status == status and message in _error(reply.body), path
    assert client.store.length() == before


@pytest.mark.parametrize(
    ("counts", "line"),
    [
        ({"SUCCEEDED": 4, "RUNNING": 2, "PENDING": 2}, "4/8 SUCCEEDED · 2 RUNNING · 2 PENDING"),
        ({"FAILED": 1, "NOT_ENDED": 7}, "0/8 SUCCEEDED · 1 FAILED · 7 NOT ENDED"),
        ({"SUCCEEDED": 8}, "8/8 SUCCEEDED"),
    ],
)
def test_an_array_tasks_line_puts_the_succeeded_first_then_the_other_states(counts: dict[str, int], line: str):
    assert children_line({"size": 8, "counts": counts}) == line
    task = {"status": "RUNNING", "reason": None, "depends_on": [], "attempts": 0, "duration": None, "run": None}
    svg = render_svg(
        {"status": "RUNNING", "tasks": {"t": task}}, link_runs=False, arrays={"t": {"size": 8, "counts": counts}}
    )
    assert re.findall(r'class="child-seg" data-status="(\w+)" data-count="(\d+)"', svg) == [
        (s, str(n)) for s, n in counts.items()
    ]
