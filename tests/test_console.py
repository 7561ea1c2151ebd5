"""The web console over HTTP: its pages, its token, its refusals, and paging through runs by index score."""

from __future__ import annotations

import re
import socket
import urllib.request
from pathlib import Path

import pytest

from queue_core import Client
from tests.support.console_http import request
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs
from tests.support.servers import server_log, start_server
from tests.support.workload import mixed_workload, schedule_workload, workflow_workload

TOKEN = "console-token-for-tests"


@pytest.fixture
def read_only(procs: Procs) -> str:
    env = {k: v for k, v in procs.env.items() if not k.startswith("JOBLEDGER_CONSOLE_TOKEN")}
    return start_server(procs, "console", name="console", env=env)[1]


@pytest.fixture
def guarded(procs: Procs, tmp_path: Path) -> str:
    token_file = tmp_path / "console_token"
    token_file.write_text(TOKEN + "\n")
    return start_server(
        procs, "console", name="console", env={**procs.env, "JOBLEDGER_CONSOLE_TOKEN_FILE": str(token_file)}
    )[1]


def _run_ids(body: str) -> list[str]:
    return re.findall(r'data-run="([0-9a-f-]{36})"', body)


def test_every_page_renders_what_the_client_says(client: Client, read_only: str):
    runs = mixed_workload(client)
    workflow_runs, _ = workflow_workload(client)
    listed = request(read_only, "/runs")
    assert listed.status == 200
    assert _run_ids(listed.body) == [r["id"] for r in client.list_runs(limit=50)]
    assert f"of {len(client.list_runs(limit=None))}" in listed.body

    failed = request(read_only, "/runs?status=FAILED&definition=gone")
    assert _run_ids(failed.body) == [r["id"] for r in client.list_runs(status="FAILED", definition="gone")]

    page = request(read_only, f"/runs/{runs[5]}")  # FAILED, SourceUnavailable
    assert page.status == 200
    assert "SourceUnavailable" in page.body and "RunFailed" in page.body and 'id="timeline"' in page.body
    assert 'id="cancel"' not in page.body  # an ended run has no cancel button

    view = client.get_workflow_run(workflow_runs[0])
    drawn = request(read_only, f"/workflow-runs/{workflow_runs[0]}")
    assert drawn.status == 200
    for name, task in view["tasks"].items():
        assert f'data-task="{name}" data-status="{task["status"]}"' in drawn.body
    svg = request(read_only, f"/workflow-runs/{workflow_runs[0]}/graph.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.headers["x-workflow-status"] == view["status"]

    diff = request(read_only, "/definitions/keep?old=1&new=2")
    assert re.search(r'<code>config\.args</code></td><td><code>""</code> → <code>"v2"</code>', diff.body)
    assert "no schedules" in request(read_only, "/schedules").body.lower()
    client.create_pool("warehouse", 3)
    clusters = request(read_only, "/clusters").body
    assert 'data-cluster="default"' in clusters and 'data-cluster="pool"' in clusters
    assert '<tr data-pool="warehouse"><td>warehouse</td><td>3</td><td>0</td>' in clusters

    audit = request(read_only, f"/events?type=RunCancelled&aggregate={runs[7]}")
    assert audit.body.count("<td>RunCancelled</td>") == 1
    first_position = client.events(aggregate=runs[3])[2].position  # RunStarted of the succeeded run
    as_of = request(read_only, f"/runs/{runs[3]}?as_of={first_position}")
    assert "As of" in as_of.body and 'class="status s-RUNNING"' in as_of.body


def test_a_read_only_console_refuses_every_write(client: Client, workspace: Path, read_only: str):
    client.define(definition("ok", job_file(workspace, "ok.sh", "true\n")))
    run_id = client.submit("ok")
    before = client.store.length()
    refused = request(read_only, f"/runs/{run_id}/cancel", form={}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert refused.status == 403
    assert "read-only" in refused.body
    assert request(read_only, "/login", form={"token": TOKEN}).status == 403
    assert client.get_run(run_id)["status"] == "PENDING"
    assert client.store.length() == before


def test_writes_need_the_token_and_it_never_shows(client: Client, workspace: Path, guarded: str, procs: Procs):
    client.define(definition("ok", job_file(workspace, "ok.sh", "true\n")))
    run_id, other = client.submit("ok"), client.submit("ok")
    before = client.store.length()
    assert request(guarded, f"/runs/{run_id}/cancel", form={}).status == 403
    assert request(guarded, f"/runs/{run_id}/cancel", form={}, headers={"Authorization": "Bearer wrong"}).status == 403
    wrong = request(guarded, "/login", form={"token": "wrong", "next": f"/runs/{run_id}"})
    assert wrong.status == 403 and "not the console" in wrong.body and not wrong.cookies
    assert client.store.length() == before

    signed = request(guarded, "/login", form={"token": TOKEN, "next": f"/runs/{run_id}"})
    assert signed.status == 303 and signed.headers["location"].startswith(f"/runs/{run_id}")
    cookies = signed.cookies
    assert cookies and TOKEN not in "".join(cookies.values())
    # The cookie alone is not enough: the form must carry the CSRF value the signed-in page holds.
    assert request(guarded, f"/runs/{run_id}/cancel", form={}, cookies=cookies).status == 403
    page = request(guarded, f"/runs/{run_id}", cookies=cookies)
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.body)
    assert csrf and 'id="cancel"' in page.body
    done = request(guarded, f"/runs/{run_id}/cancel", form={"csrf": csrf.group(1)}, cookies=cookies)
    assert done.status == 303
    assert client.get_run(run_id)["status"] == "CANCELLED"

    by_header = request(guarded, f"/runs/{other}/cancel", form={}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert by_header.status == 303
    assert client.get_run(other)["status"] == "CANCELLED"
    again = request(guarded, f"/runs/{other}/cancel", form={}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert again.status == 409 and "already ended: CANCELLED" in again.body
    for reply in (signed, page, done, by_header, again):
        assert TOKEN not in reply.body
    assert TOKEN not in server_log(procs, "console")


BAD_INPUT = [
    ("/runs?status=DONE", 400, "status: &#39;DONE&#39; is not one of PENDING"),
    ("/runs?before=soon", 400, "before: &#39;soon&#39; is not a number"),
    ("/runs?size=0", 400, "size: must be a whole number from 1 to 200"),
    ("/runs?as_of=yesterday", 400, "as of: &#39;yesterday&#39; is neither a log position"),
    ("/runs/not-a-run", 404, "no run with id not-a-run"),
    ("/runs/00000000-0000-4000-8000-000000000000/logs?after=x", 400, "after: &#39;x&#39; is not a log position"),
    ("/workflow-runs/00000000-0000-4000-8000-000000000000", 404, "no workflow run"),
    ("/definitions/nothing", 404, "no definition named &#39;nothing&#39;"),
    ("/events?type=Nope", 400, "type: &#39;Nope&#39; is not an event type"),
    ("/nowhere", 404, "no such page"),
    ("/runs?since=yesterday", 400, "since: &#39;yesterday&#39; is neither a time"),
    ("/runs?until=2026-13-01", 400, "until: &#39;2026-13-01&#39; is neither a time"),
    ("/runs?since=1h&until=2h", 400, "since: must be before until"),
    ("/runs?since=99999999999d", 400, "since: "),
    ("/runs?q=" + "x" * 300, 400, "q: longer than 200 characters"),
    ("/runs?reason=%00", 400, "reason: holds a NUL character"),
    ("/runs?status=nope&q=a", 400, "status: &#39;NOPE&#39; is not one of PENDING"),
    ("/runs?as_of=1-0&q=a", 400, "as_of: as of a past point, runs are filtered by status and definition only"),
    ("/?as_of=1-0", 400, "as_of: the overview shows the present"),
    ("/timezone?tz=Mars/Olympus", 400, "tz: &#39;Mars/Olympus&#39; is not a time zone"),
    ("/timezone?tz=" + "A" * 100, 400, "tz: "),
    ("/live?after=nope", 400, "after: &#39;nope&#39; is not a log position"),
    ("/runs/00000000-0000-4000-8000-000000000000/logs/stream", 404, "no run with id"),
    ("/runs/00000000-0000-4000-8000-000000000000/logs/stream?after=x", 400, "after: &#39;x&#39; is not a log position"),
]


def test_bad_input_is_a_one_line_page_with_its_status(client: Client, read_only: str):
    before = client.store.length()
    for path, status, message in BAD_INPUT:  # one console for all of them: each start costs a second
        reply = request(read_only, path)
        assert reply.status == status, path
        shown = re.search(r'<p class="error" id="error">([^<]*)</p>', reply.body)
        assert shown and message in shown.group(1), path
        assert "Traceback" not in reply.body
    assert client.store.length() == before


def test_paging_through_runs_visits_each_once_newest_first_and_comes_back(
    client: Client, workspace: Path, read_only: str
):
    client.define(definition("a", job_file(workspace, "a.sh", "true\n")))
    client.define(definition("b", job_file(workspace, "b.sh", "true\n")))
    ids = [client.submit("a" if i % 3 else "b") for i in range(120)]
    for run_id in ids[::4]:
        client.cancel(run_id)
    for query, expected in (
        ("size=25", [r["id"] for r in client.list_runs(limit=None)]),
        ("status=CANCELLED&definition=b&size=4", [r["id"] for r in client.list_runs("CANCELLED", "b", limit=None)]),
    ):
        seen, pages, path = [], [], f"/runs?{query}"
        while path:
            body = request(read_only, path).body
            pages.append((path, _run_ids(body)))
            seen += pages[-1][1]
            older = re.search(r'id="older" href="([^"]+)"', body)
            path = older.group(1).replace("&amp;", "&") if older else None
        assert seen == expected and len(expected) >= 10
        assert len(pages) >= 3
        # "newer" from the second page is the first page again
        body = request(read_only, pages[1][0]).body
        newer = re.search(r'id="newer" href="([^"]+)"', body).group(1).replace("&amp;", "&")
        assert _run_ids(request(read_only, newer).body) == pages[0][1]


def test_the_servers_refuse_a_taken_port_and_an_unreadable_token_file_in_one_line(procs: Procs, tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        for command in ("console", "metrics"):
            result = procs.cli(command, "--port", port)
            assert result.returncode == 2, result.stderr
            assert (
                result.stderr.strip() == f"jobledger: --port: cannot listen on 127.0.0.1:{port}: Address already in use"
            )
    assert "must be from 0" in procs.cli("console", "--port", "70000").stderr
    procs.env["JOBLEDGER_CONSOLE_TOKEN_FILE"] = str(tmp_path / "absent")
    result = procs.cli("console", "--port", "0")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"jobledger: JOBLEDGER_CONSOLE_TOKEN_FILE: cannot read {tmp_path / 'absent'}: No such file or directory"
    )


def test_the_schedule_pages_show_next_ticks_fires_and_missed_ticks(client: Client, read_only: str):
    mixed_workload(client)
    workflow_workload(client)
    names = schedule_workload(client)
    listed = request(read_only, "/schedules").body
    for found in client.list_schedules():
        assert f'href="/schedules/{found["name"]}"' in listed
        assert found["next_fire"] is None or found["next_fire"] in listed
    for name in names:
        shown = client.get_schedule(name)
        page = request(read_only, f"/schedules/{name}").body
        assert f"missed {shown['missed']}" in page and f"fired {shown['fired']}" in page
        for tick in shown["history"]:
            assert f'class="o-{tick["outcome"]}"' in page
            if tick["run"]:
                assert tick["run"][:8] in page
    assert client.get_schedule("every-10")["missed"] > 0  # the outage shows


def test_the_overview_definition_and_workflow_pages_render_empty_and_with_runs(
    client: Client, workspace: Path, read_only: str
):
    client.define(definition("lonely", job_file(workspace, "lonely.sh", "true\n")))
    client.apply_workflow({"name": "idle", "tasks": {"t": {"job": definition("t", "t.sh")["config"]}}})
    empty = {path: request(read_only, path) for path in ("/", "/definitions/lonely", "/workflows/idle")}
    assert all(reply.status == 200 for reply in empty.values()), {p: r.status for p, r in empty.items()}
    assert "no ended runs" in empty["/"].body and "nothing is quarantined" in empty["/"].body
    assert "no runs yet" in empty["/definitions/lonely"].body and "no ended runs" in empty["/definitions/lonely"].body
    assert "no runs yet" in empty["/workflows/idle"].body

    runs = mixed_workload(client)
    workflow_workload(client)
    home = request(read_only, "/").body
    day = home[home.index('id="runs-24h"') : home.index('id="runs-7d"')]
    drawn = {status: sum(map(int, re.findall(rf'data-status="{status}" data-count="(\d+)"', day))) for status in
             ("SUCCEEDED", "FAILED", "CANCELLED", "RUNNING", "PENDING")}  # fmt: skip
    every = client.list_runs(limit=None)
    assert drawn == {s: sum(1 for r in every if r["status"] == s) for s in drawn}  # the 24 h chart counts each run
    assert re.search(r'<tr data-cluster="pool">.*?<td class="running"><a [^>]*>1</a>', home)  # the running "gone" run
    assert '<a href="/runs?definition=gone&amp;status=FAILED">gone</a>' in home  # the most failing definition

    keep = request(read_only, "/definitions/keep").body
    strip = re.findall(r'<a class="cell s-(\w+)" data-run="([0-9a-f-]{36})"', keep)
    newest_first = client.list_runs(definition="keep", limit=None)
    assert [run_id for _, run_id in strip] == [r["id"] for r in newest_first][::-1]  # newest right
    assert [status for status, _ in strip] == [r["status"] for r in newest_first][::-1]
    points = re.findall(r'<circle class="point" data-run="([0-9a-f-]{36})"', keep)
    assert points == [r["id"] for r in newest_first[::-1] if r["finished_at"] and r["attempts"]]
    assert 'class="median"' in keep and "p95" in keep

    pair = request(read_only, "/workflows/pair").body
    assert '<tr data-task="a">' in pair and '<tr data-task="b">' in pair
    assert pair.count('href="/workflow-runs/') >= 2
    assert runs  # the mixed workload's runs are in the strips above


def test_the_gantt_of_a_known_workflow_run_has_one_bar_per_attempt_in_order(client: Client, read_only: str):
    workflow_runs, _ = workflow_workload(client)
    repaired = workflow_runs[0]  # a succeeded; b failed, was repaired, and its new run waits in the queue
    page = request(read_only, f"/workflow-runs/{repaired}").body
    bars = re.findall(r'<g class="gantt-bar" data-task="(\w+)" data-attempt="(\d+)" data-kind="(\w+)">', page)
    assert bars == [("a", "1", "succeeded"), ("b", "1", "failed"), ("b", "1", "queued")]
    cancelled = request(read_only, f"/workflow-runs/{workflow_runs[1]}").body
    assert re.findall(r'data-task="(\w+)" data-attempt="\d+" data-kind="(\w+)"', cancelled) == [
        ("a", "cancelled"),
        ("b", "skipped"),
    ]


def test_a_search_url_round_trips_and_an_id_goes_straight_to_its_run(client: Client, read_only: str):
    runs = mixed_workload(client)
    workflow_runs, children = workflow_workload(client)
    path = "/runs?q=keep&status=PENDING&reason=retry&cluster=default&since=7d&until=2099-01-01T00%3A00%3A00Z"
    body = request(read_only, path).body
    found = _run_ids(body)
    assert found == [runs[4]]  # the run of keep waiting to retry
    for name, value in (("q", "keep"), ("reason", "retry"), ("cluster", "default"), ("since", "7d")):
        assert f'name="{name}" value="{value}"' in body or f'name="{name}" list="' in body
    assert "<option selected>PENDING</option>" in body
    assert 'value="2099-01-01T00:00:00Z"' in body
    by_workflow = _run_ids(request(read_only, "/runs?workflow=pair").body)
    assert set(by_workflow) == {c for c in children if client.get_run(c)["workflow_run"] in workflow_runs[:2]}
    assert _run_ids(request(read_only, "/runs?workflow=pair&tag=nightly").body) == []  # runs carry no tags yet
    shortcut = request(read_only, f"/runs?q={runs[3]}")
    assert shortcut.status == 303 and shortcut.headers["location"] == f"/runs/{runs[3]}"
    wf = request(read_only, f"/runs?q={workflow_runs[0]}")
    assert wf.status == 303 and wf.headers["location"] == f"/workflow-runs/{workflow_runs[0]}"


def test_times_read_as_people_say_them_in_the_zone_they_chose(client: Client, read_only: str):
    runs = mixed_workload(client)
    page = request(read_only, f"/runs/{runs[3]}")
    exact = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    assert re.search(rf'<time datetime="[0-9T:.-]+Z" title="{exact} UTC">(just now|\d+ s ago)', page.body)
    chosen = request(read_only, f"/timezone?tz=Asia/Tokyo&next=/runs/{runs[3]}")
    assert chosen.status == 303 and chosen.headers["location"] == f"/runs/{runs[3]}"
    tokyo = request(read_only, f"/runs/{runs[3]}", cookies=chosen.cookies).body
    assert re.search(r'title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d JST \(\d{4}-[^)]* UTC\)"', tokyo)
    assert request(read_only, "/timezone?tz=https://elsewhere&next=//evil").status == 400


def test_live_changes_resume_after_the_last_event_id(client: Client, workspace: Path, read_only: str):
    client.define(definition("ok", job_file(workspace, "ok.sh", "true\n")))
    before = client.store.last_position()
    run_id = client.submit("ok")
    stream = _sse_messages(read_only, "/live", {"Last-Event-ID": before}, count=1)
    assert stream[0]["event"] == "change" and run_id in stream[0]["data"]
    assert stream[0]["id"] == client.store.last_position()
    later = client.submit("ok")  # lands while no page listens: the reconnect gets it, and only it
    resumed = _sse_messages(read_only, "/live", {"Last-Event-ID": stream[0]["id"]}, count=1)
    assert resumed[0]["event"] == "change" and later in resumed[0]["data"] and run_id not in resumed[0]["data"]
    fresh = _sse_messages(read_only, "/live", {}, count=1)  # no Last-Event-ID: where the log stands now
    assert fresh[0]["event"] == "hello" and fresh[0]["id"] == client.store.last_position()


def _sse_messages(base: str, path: str, headers: dict[str, str], count: int) -> list[dict[str, str]]:
    """The first ``count`` messages (comments and the retry line aside) of an event stream."""
    req = urllib.request.Request(base + path, headers=headers)
    messages: list[dict[str, str]] = []
    with urllib.request.urlopen(req, timeout=30) as response:
        current: dict[str, str] = {}
        for raw in response:
            line = raw.decode().rstrip("\n")
            if not line:
                if "event" in current:
                    messages.append(current)
                    if len(messages) == count:
                        return messages
                current = {}
            elif not line.startswith(":") and ":" in line:
                key, _, value = line.partition(":")
                current[key] = value.strip()
    return messages
