"""Reading the past: event filters, following the log, and state as of a position or a time."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from queue_core import Client, Settings
from queue_core.domain.arrays import child_id
from scheduler.dispatcher import Dispatcher
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs, eventually


def _iso(position: str) -> str:
    """The time of a position's millisecond, as ISO 8601."""
    ms = int(position.split("-")[0])
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _run_to_success(client: Client, definition_name: str) -> tuple[str, list[str]]:
    """Submit a run and move it to SUCCEEDED through the lifecycle commands; returns its event positions."""
    run_id = client.submit(definition_name)
    assert client.lifecycle.queue(run_id, 1)
    claim = client.lifecycle.claim(run_id, 1, "w", "h", 1)
    assert claim is not None and client.lifecycle.succeed(claim)
    return run_id, [rec.position for rec in client.events(aggregate=run_id)]


def test_status_as_of_shows_the_run_as_it_was_at_each_position(client: Client, workspace: Path, procs: Procs):
    client.define(definition("tt", job_file(workspace, "x.sh", "true\n")))
    run_id, positions = _run_to_success(client, "tt")
    seen = [json.loads(procs.cli("status", run_id, "--as-of", p, "--json").stdout) for p in positions]
    assert [(r["status"], r["reason"]) for r in seen] == [
        ("PENDING", "Recently submitted"),
        ("PENDING", "In queue"),
        ("RUNNING", None),
        ("SUCCEEDED", None),
    ]
    before = procs.cli("status", run_id, "--as-of", "1000-0")
    assert before.returncode == 2 and "no run with id" in before.stderr and "at that point" in before.stderr


def test_runs_as_of_lists_the_runs_that_existed_then_in_their_states_then(
    client: Client, workspace: Path, procs: Procs
):
    client.define(definition("tt", job_file(workspace, "x.sh", "true\n")))
    first, first_positions = _run_to_success(client, "tt")
    second = client.submit("tt")
    at_first_start = json.loads(procs.cli("runs", "--as-of", first_positions[2], "--json").stdout)
    assert [(r["id"], r["status"]) for r in at_first_start] == [(first, "RUNNING")]
    now = json.loads(procs.cli("runs", "--json").stdout)
    assert [(r["id"], r["status"]) for r in now] == [(second, "PENDING"), (first, "SUCCEEDED")]
    by_time = json.loads(procs.cli("runs", "--as-of", _iso(first_positions[-1]), "--json").stdout)
    assert first in [r["id"] for r in by_time]
    assert (
        json.loads(procs.cli("runs", "--as-of", first_positions[-1], "--status", "succeeded", "--json").stdout)[0]["id"]
        == first
    )


def test_definitions_show_as_of_sees_the_versions_and_the_owner_of_a_name_then(client: Client, procs: Procs):
    old = client.define(definition("tt", "a.sh", args="one"))
    at_v1 = client.store.last_position()
    client.define(definition("tt", "a.sh", args="two"))
    client.delete_definition("tt")
    at_deleted = client.store.last_position()
    new = client.define(definition("tt", "b.sh"))
    shown = json.loads(procs.cli("definitions", "show", "tt", "--as-of", at_v1, "--json").stdout)
    assert (shown["id"], shown["version"], len(shown["versions"])) == (old.id, 1, 1)
    gone = procs.cli("definitions", "show", "tt", "--as-of", at_deleted)
    assert gone.returncode == 2 and "no definition named 'tt'" in gone.stderr
    assert json.loads(procs.cli("definitions", "show", "tt", "--json").stdout)["id"] == new.id


def test_events_since_and_until_take_positions_and_times_inclusively(client: Client, procs: Procs):
    for i in range(5):
        client.create_cluster(f"c{i}")
    positions = [rec.position for rec in client.events(type="ClusterRegistered")]
    listed = json.loads(
        procs.cli(
            "events", "--type", "ClusterRegistered", "--since", positions[1], "--until", positions[3], "--json"
        ).stdout
    )
    assert [e["position"] for e in listed] == positions[1:4]
    by_time = json.loads(
        procs.cli("events", "--type", "ClusterRegistered", "--since", _iso(positions[0]), "--json").stdout
    )
    assert [e["position"] for e in by_time] == positions
    bad = procs.cli("events", "--since", "last tuesday")
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_events_follow_prints_new_events_as_json_lines_as_they_land(client: Client, procs: Procs, tmp_path: Path):
    client.create_cluster("before")
    out = tmp_path / "follow.out"
    with open(out, "w") as stdout:
        follower = subprocess.Popen(
            [sys.executable, "-m", "queue_core", "events", "--follow", "--json", "--type", "ClusterRegistered"],
            env=procs.env,
            stdout=stdout,
            stderr=subprocess.DEVNULL,
        )
    try:
        eventually(lambda: out.read_text().count("\n") == 1, what="the existing event")
        client.create_cluster("after-1")
        client.create_cluster("after-2")
        eventually(lambda: out.read_text().count("\n") == 3, what="the new events")
    finally:
        follower.kill()
        follower.wait()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["data"]["name"] for line in lines] == ["before", "after-1", "after-2"]
    assert all(set(line) == {"position", "time", "type", "aggregate", "version", "data"} for line in lines)


def test_an_array_parents_counts_as_of_a_past_position_are_its_childrens_states_then(
    client: Client, settings: Settings, workspace: Path
):
    client.define(definition("short", job_file(workspace, "short.sh", "true\n")))
    parent = client.submit("short", array=4)
    dispatcher = Dispatcher(settings, name="expander")
    dispatcher.ensure_group()
    while dispatcher.step():  # the children submitted, each queued
        pass
    children = [child_id(parent, i) for i in range(4)]
    first = client.lifecycle.claim(children[0], 1, "w", "h", 1)
    assert first is not None and client.lifecycle.succeed(first)
    second = client.lifecycle.claim(children[1], 1, "w", "h", 1)
    assert second is not None
    then = client.store.last_position()  # one child ended, one running, two pending
    assert client.lifecycle.succeed(second)
    for run_id in children[2:]:
        claim = client.lifecycle.claim(run_id, 1, "w", "h", 1)
        assert claim is not None and client.lifecycle.succeed(claim)
    assert client.get_run(parent)["array"]["counts"]["SUCCEEDED"] == 4  # now
    counts = client.get_run(parent, as_of=then)["array"]["counts"]
    assert {state: n for state, n in counts.items() if n} == {"SUCCEEDED": 1, "RUNNING": 1, "PENDING": 2}
