"""The audit verbs on the command line: rebuild in place under load, diffs, timelines, the largest aggregate."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from queue_core import Client, Settings
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs


def test_rebuild_in_place_while_four_threads_submit_loses_no_event(
    client: Client, settings: Settings, workspace: Path, procs: Procs
):
    client.define(definition("busy", job_file(workspace, "x.sh", "true\n")))
    for _ in range(200):
        client.submit("busy")
    client.list_runs()  # the live read models exist and are caught up before the rebuild
    stop = threading.Event()
    submitted: list[str] = []

    def submit_until_stopped() -> None:
        own = Client(settings=settings)
        while not stop.is_set():
            submitted.append(own.submit("busy"))

    threads = [threading.Thread(target=submit_until_stopped) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        result = procs.cli("replay", "--rebuild")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert result.returncode == 0, result.stderr
    assert submitted, "the threads submitted nothing while the rebuild ran"
    listed = {run["id"] for run in client.list_runs(limit=None)}
    assert listed == {rec.aggregate for rec in client.events(type="RunSubmitted")}
    assert set(submitted) <= listed
    verified = client.replay_verify()
    assert verified.identical, verified.difference


def test_replay_verify_names_the_largest_aggregate(client: Client, workspace: Path, procs: Procs):
    client.define(definition("big", job_file(workspace, "x.sh", "true\n")))
    run_id = client.submit("big")
    assert client.lifecycle.queue(run_id, 1)
    result = procs.cli("replay", "--verify")
    assert result.returncode == 0
    assert f"largest aggregate: {run_id} (2 events)" in result.stdout


def test_definitions_diff_shows_fields_added_removed_and_changed(client: Client, procs: Procs):
    client.define(definition("etl", "a.sh", args="--day 1", env={"A": "1", "B": "2"}))
    client.define(definition("etl", "a.sh", args="--day 2", env={"A": "1", "C": "3"}))
    text = procs.cli("definitions", "diff", "etl", "1", "2").stdout.splitlines()
    assert text == [
        '~ config.args: "--day 1" -> "--day 2"',
        '- config.envVars.B: "2"',
        '+ config.envVars.C: "3"',
    ]
    as_json = json.loads(procs.cli("definitions", "diff", "etl", "2", "1", "--json").stdout)
    assert {c["kind"] for c in as_json} == {"changed", "added", "removed"}
    missing = procs.cli("definitions", "diff", "etl", "1", "7")
    assert missing.returncode == 2 and "no version 7" in missing.stderr


def test_status_timeline_splits_a_retried_run_into_phases(client: Client, workspace: Path, procs: Procs):
    client.define(definition("flaky", job_file(workspace, "x.sh", "true\n"), retries=1))
    run_id = client.submit("flaky")
    assert client.lifecycle.queue(run_id, 1)
    claim = client.lifecycle.claim(run_id, 1, "w", "h", 1)
    assert claim is not None and client.lifecycle.fail(claim, "NonZeroExitCode", 1, "exit code 1")
    again = client.lifecycle.claim(run_id, 2, "w", "h", 1)
    assert again is not None and client.lifecycle.succeed(again)
    phases = json.loads(procs.cli("status", run_id, "--timeline", "--json").stdout)
    assert [(p["phase"], p["attempt"]) for p in phases] == [
        ("recently submitted", 1),
        ("in queue", 1),
        ("running", 1),
        ("waiting to retry", 2),
        ("running", 2),
    ]
    assert all(p["ended_at"] is not None and p["seconds"] >= 0 for p in phases)
    text = procs.cli("status", run_id, "--timeline").stdout
    assert "waiting to retry" in text and "recently submitted" in text
