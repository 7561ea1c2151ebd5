"""Backfills and schedule extras for real: a backfill on real workers, --reprocess failed, bad ranges refused;
jitter on the timer's clock, also catching up after an outage, pause notes, a manual fire, and a schedule (of a
definition, of a workflow) pausing itself when its run fails."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from queue_core import Client, InvalidInput, NotFound
from queue_core.domain.schedules import fire_time, instant, stamp
from scheduler.follow_ups import FollowUps
from tests.support.clock import T0
from tests.support.jobs import definition, job_file, native, shell_task
from tests.support.processes import Procs, eventually
from tests.support.schedules import fired_ticks, fires, new_timer, step_minutes

FAILING_TICK = "2026-11-20T01:00:00Z"


def test_a_backfill_runs_each_tick_once_and_reprocess_failed_runs_only_the_failed_one_again(
    client: Client, fleet: Procs, workspace: Path
):
    script = job_file(workspace, "day.sh", 'case "$1" in 2026-11-20T01:*) exit 1;; esac\n')
    client.define(definition("daily", script))
    client.create_schedule("hourly", definition="daily", cron="0 * * * *", args="${logical_date}")
    scheduler = FollowUps(client)
    window = ("--from", "2026-11-20T00:00:00Z", "--to", "2026-11-20T03:00:00Z")
    dry = fleet.cli("schedule", "backfill", "hourly", *window, "--dry-run")
    assert dry.returncode == 0 and "4 to run, 0 left alone" in dry.stdout
    started = json.loads(fleet.cli("schedule", "backfill", "hourly", *window, "--max-active", "2", "--json").stdout)
    assert started["ticks"][0] == "2026-11-20T00:00:00Z" and len(started["ticks"]) == 4

    def finished() -> dict | None:
        scheduler.run_pass()
        doc = client.get_backfill(started["id"])
        return doc if doc["status"] == "FINISHED" else None

    done = eventually(finished, timeout=60, what="the backfill to finish")
    assert (done["succeeded"], done["failed"]) == (3, 1)
    assert {e["tick"]: e["status"] for e in done["runs"]}[FAILING_TICK] == "FAILED"
    assert [client.get_run(e["run"])["logical_date"] for e in done["runs"]] == started["ticks"]
    assert client.get_run(done["runs"][0]["run"])["cause"]["reason"] == "backfill"
    again = client.backfill_schedule("hourly", *window[1::2], reprocess="failed", backwards=True)
    assert again["ticks"] == [FAILING_TICK] and len(again["left_alone"]) == 3
    assert client.backfill_schedule("hourly", *window[1::2], dry_run=True)["ticks"] == []
    listed = fleet.cli("backfill", "list")
    assert started["id"] in listed.stdout and again["id"] in listed.stdout
    assert fleet.cli("backfill", "cancel", again["id"]).returncode == 0
    assert client.get_backfill(again["id"])["status"] == "CANCELLED"


def test_bad_backfills_and_schedule_options_are_refused_in_one_line_and_nothing_is_appended(
    procs: Procs, client: Client, workspace: Path
):
    client.define(definition("job", job_file(workspace, "ok.sh", "true\n")))
    client.create_schedule("minutely", definition="job", cron="* * * * *")
    before = client.store.length()
    for args in (
        ["schedule", "backfill", "minutely", "--from", "2026-11-20T03:00:00Z", "--to", "2026-11-20T00:00:00Z"],
        ["schedule", "backfill", "minutely", "--from", "2026-01-01T00:00:00Z", "--to", "2026-11-20T00:00:00Z"],
        ["schedule", "create", "j", "--definition", "job", "--cron", "* * * * *", "--jitter", "-1"],
    ):
        refused = procs.cli(*args)
        assert refused.returncode == 2, (args, refused.stderr)
        assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    for call, field in (
        (lambda: client.backfill_schedule("minutely", "yesterday", "2026-11-20T00:00:00Z"), "from"),
        (lambda: client.backfill_schedule("minutely", "2026-11-20T00:00:10Z", "2026-11-20T00:00:30Z"), "to"),
        (lambda: client.create_schedule("j", definition="job", cron="* * * * *", jitter=99999), "jitter"),
        (lambda: client.pause_schedule("minutely", note="two\nlines"), "note"),
    ):
        with pytest.raises(InvalidInput) as refused_here:
            call()
        assert refused_here.value.field == field
    with pytest.raises(NotFound):
        client.get_backfill("00000000-0000-4000-8000-000000000000")
    assert client.store.length() == before


def test_jitter_delays_each_tick_by_its_own_offset(client: Client, workspace: Path, timer, clock):
    client.define(definition("job", job_file(workspace, "ok.sh", "true\n")))
    doc = client.create_schedule("spread", definition="job", cron="*/10 * * * *", jitter=5, overlap="allow", now=T0)
    first = doc["next_fire"]
    assert "2026-11-21T08:10:00Z" <= first <= "2026-11-21T08:15:00Z"
    step_minutes(timer, clock, 9)
    assert fires(client, "spread") == []
    step_minutes(timer, clock, 7)
    (fired,) = fires(client, "spread")
    assert fired["tick"] == "2026-11-21T08:10:00Z"  # the logical date stays the tick
    assert fired["time"] >= first


def test_pause_notes_manual_fires_and_pausing_on_failure(client: Client, fleet: Procs, workspace: Path):
    client.define(definition("flaky", job_file(workspace, "fail.sh", "exit 3\n")))
    client.create_schedule("nightly", definition="flaky", cron="0 2 * * *", pause_on_failure=True)
    paused = fleet.cli("schedule", "pause", "nightly", "--note", "upstream outage")
    assert paused.returncode == 0
    assert "upstream outage" in fleet.cli("schedule", "list").stdout
    assert "upstream outage" in fleet.cli("schedule", "show", "nightly").stdout
    client.resume_schedule("nightly")
    scheduler = FollowUps(client)
    scheduler.run_pass()
    fired = fleet.cli("schedule", "trigger", "nightly")
    assert fired.returncode == 0 and "fired manually" in fired.stdout
    doc = client.get_schedule("nightly")
    run = doc["last_run"]["id"]
    assert doc["history"][0]["reason"] == "manual" and client.get_run(run)["cause"]["reason"] == "manual"
    assert client.wait(run, timeout=60)["status"] == "FAILED"

    def paused_itself() -> dict | None:
        scheduler.run_pass()
        doc = client.get_schedule("nightly")
        return doc if doc["status"] == "PAUSED" else None

    doc = eventually(paused_itself, timeout=30, what="the schedule to pause itself")
    assert run in doc["pause_note"]
    assert FollowUps(client).failures_pass() == 0 and client.get_schedule("nightly")["fired"] == 1


def test_a_workflow_schedule_fired_manually_pauses_itself_when_its_workflow_run_fails(
    client: Client, fleet: Procs, workspace: Path
):
    client.apply_workflow(native("loads", {"load": shell_task(workspace, "load", "exit 4\n")}))
    client.create_schedule("loads-nightly", workflow="loads", cron="0 2 * * *", pause_on_failure=True)
    scheduler = FollowUps(client)
    scheduler.run_pass()
    fired = fleet.cli("schedule", "trigger", "loads-nightly")
    assert fired.returncode == 0 and "fired manually" in fired.stdout
    doc = client.get_schedule("loads-nightly")
    flow = doc["last_run"]["id"]
    assert doc["last_run"]["kind"] == "workflow_run" and doc["history"][0]["reason"] == "manual"
    assert client.wait_workflow_run(flow, timeout=60)["status"] == "FAILED"

    def paused_itself() -> dict | None:
        scheduler.run_pass()
        doc = client.get_schedule("loads-nightly")
        return doc if doc["status"] == "PAUSED" else None

    doc = eventually(paused_itself, timeout=30, what="the workflow schedule to pause itself")
    assert doc["paused_for"] == flow and flow in doc["pause_note"]


def test_jittered_ticks_missed_while_the_scheduler_was_down_are_caught_up_each_once(
    client: Client, workspace: Path, clock
):
    client.define(definition("job", job_file(workspace, "ok.sh", "true\n")))
    doc = client.create_schedule(
        "spread-all", definition="job", cron="*/10 * * * *", jitter=5, catchup="all", overlap="allow", now=T0
    )
    jitter = {"id": doc["id"], "jitter": 5.0}
    ticks = [datetime(2026, 11, 21, 8, 10, tzinfo=UTC) + timedelta(minutes=10 * k) for k in range(7)]
    clock.now = datetime(2026, 11, 21, 9, 3, tzinfo=UTC)  # 08:10 .. 08:50 passed with no scheduler; 09:00 maybe
    new_timer(client, clock).run_pass()
    due = [t for t in ticks if fire_time(jitter, t) <= clock.now]
    fired = fires(client, "spread-all")
    assert [f["tick"] for f in fired] == [stamp(t) for t in due]
    late = [(clock.now - fire_time(jitter, t)).total_seconds() > 60 for t in due]
    assert [f["reason"] for f in fired] == ["caught up" if is_late else None for is_late in late]
    step_minutes(new_timer(client, clock), clock, 10)  # back: 09:00 and 09:10 fire at their own offsets
    fired = fires(client, "spread-all")
    assert [f["tick"] for f in fired] == [stamp(t) for t in ticks if fire_time(jitter, t) <= clock.now]
    assert all(f["time"] >= stamp(fire_time(jitter, instant(f["tick"]))) for f in fired)
    assert set(fired_ticks(client).values()) == {1}
    assert [r["logical_date"] for r in client.list_runs(definition="job")][::-1] == [f["tick"] for f in fired]
