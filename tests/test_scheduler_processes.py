"""Schedules with real processes: two schedulers on one Redis, the job's logical date, the CLI, ``jobledger up``."""

from __future__ import annotations

import json
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from queue_core import Client, Settings
from queue_core.readmodels.materialized import verify
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs, eventually, jobledger_up
from tests.support.schedules import fired_ticks, soon


def test_two_scheduler_processes_fire_each_tick_of_a_burst_once(client: Client, workspace: Path, procs: Procs):
    client.define(definition("burst", job_file(workspace, "burst.sh", "true\n")))
    # 30 minutes of missed minutely ticks, caught up all at once, and 20 one-time schedules due together.
    # --end keeps the minutely schedule to those 30 (minute-30min .. minute-1min) however long the test
    # takes on a loaded machine.
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    client.create_schedule(
        "minutely", definition="burst", cron="* * * * *", catchup="all", overlap="allow",
        now=minute - timedelta(minutes=30, seconds=30), end=(minute - timedelta(seconds=1)).isoformat(),
    )  # fmt: skip
    first, second = procs.dispatcher(timer=True), procs.dispatcher(timer=True)
    at = soon(3)
    for i in range(20):
        client.create_schedule(f"once-{i}", definition="burst", at=at)

    def settled() -> bool:
        schedules = client.list_schedules()
        return sum(s["fired"] for s in schedules) >= 50 and all(s["status"] == "ENDED" for s in schedules)

    eventually(settled, timeout=60, what="every tick of the burst to fire")
    assert first.poll() is None and second.poll() is None
    fired = fired_ticks(client)
    assert set(fired.values()) == {1}
    assert sum(fired.values()) == len(client.events(type="RunSubmitted")) == 50
    assert verify(client.store).identical


def test_a_scheduled_job_sees_its_logical_date_and_its_args(
    client: Client, workspace: Path, procs: Procs, redis_url: str
):
    client.define(definition("dated", job_file(workspace, "dated.sh", 'echo "$JOBLEDGER_LOGICAL_DATE $*"\n')))
    procs.dispatcher(timer=True)
    procs.worker(redis_url)
    at = soon(2)
    client.create_schedule("dated", definition="dated", at=at, args="--day ${logical_date:%Y%m%d}")
    run_id = eventually(lambda: client.get_schedule("dated")["last_run"], timeout=30, what="the fire")["id"]
    assert client.wait(run_id, timeout=30)["status"] == "SUCCEEDED"
    day = at[:10].replace("-", "")
    assert [line.line for line in client.logs(run_id)] == [f"{at} --day {day}"]


def test_the_schedule_commands_print_json_and_refuse_bad_input_with_exit_2(client: Client, workspace: Path, procs):
    client.define(definition("nightly", job_file(workspace, "n.sh", "true\n")))
    before = len(client.events())
    for bad, message in [
        (["--cron", "61 * * * *"], "cron: '61 * * * *': minute field: 61 is out of range 0-59"),
        (["--cron", "0 2 * * *", "--timezone", "Mars/Olympus"], "timezone: unknown time zone 'Mars/Olympus'"),
        (["--cron", "0 2 * * *", "--overlap", "merge"], "argument --overlap: invalid choice"),
        (["--at", "2020-01-01T00:00:00Z"], "is in the past"),
        ([], "one of the arguments --cron --at is required"),
    ]:
        result = procs.cli("schedule", "create", "n", "--definition", "nightly", *bad)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert len(client.events()) == before

    created = procs.cli(
        "schedule", "create", "n", "--definition", "nightly", "--cron", "30 2 * * *", "--timezone", "Europe/Paris",
        "--catchup", "none", "--overlap", "queue", "--args=--day ${logical_date:%Y%m%d}", "--json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    doc = json.loads(created.stdout)
    assert (doc["cron"], doc["timezone"], doc["catchup"], doc["overlap"]) == (
        "30 2 * * *",
        "Europe/Paris",
        "none",
        "queue",
    )
    listed = json.loads(procs.cli("schedule", "list", "--json").stdout)
    assert [s["name"] for s in listed] == ["n"]
    assert listed[0]["next_fire"].endswith(("01:30:00Z", "00:30:00Z"))  # 02:30 in Paris, winter or summer
    assert "30 2 * * * (Europe/Paris)" in procs.cli("schedule", "list").stdout
    shown = json.loads(procs.cli("schedule", "show", "n", "--json").stdout)
    assert [e["outcome"] for e in shown["history"]] == ["created"]
    assert procs.cli("schedule", "pause", "n").stdout.startswith("n PAUSED")
    assert procs.cli("schedule", "resume", "n").stdout.startswith("n ACTIVE")
    assert "created" in procs.cli("schedule", "show", "n").stdout
    assert procs.cli("schedule", "delete", "n").returncode == 0
    missing = procs.cli("schedule", "show", "n")
    assert (missing.returncode, missing.stderr.strip()) == (2, "jobledger: no schedule named 'n'")


def test_up_runs_the_timer_so_a_schedule_fires(
    env: dict[str, str], settings: Settings, workspace: Path, tmp_path: Path
):
    client = Client(settings=settings)
    client.define(definition("ok", job_file(workspace, "ok.sh", "echo fired\n")))
    out = tmp_path / "up.out"
    with jobledger_up(env, grace=5, out=out) as up:
        eventually(lambda: "running; Ctrl-C stops" in out.read_text(), what="up to start")
        client.create_schedule("soon", definition="ok", at=soon(2))
        run = eventually(lambda: client.get_schedule("soon")["last_run"], timeout=30, what="the fire")
        assert client.wait(run["id"], timeout=30)["status"] == "SUCCEEDED"
        os.kill(up.pid, signal.SIGINT)
        assert up.wait(timeout=30) == 0


@pytest.mark.parametrize("verb", ["pause", "resume", "delete", "show"])
def test_a_verb_on_an_unknown_schedule_exits_2(procs: Procs, redis_url: str, verb: str):
    result = procs.cli("schedule", verb, "nothing-here")
    assert (result.returncode, result.stderr.strip()) == (2, "jobledger: no schedule named 'nothing-here'")
