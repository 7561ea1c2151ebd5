"""Schedules of workflows: each tick starts one workflow run with the tick as its logical date."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from queue_core import Client, InvalidInput, NotFound
from queue_core.readmodels.materialized import verify
from tests.support.clock import T0, Clock
from tests.support.jobs import definition, job_file, native, shell_task
from tests.support.paths import EXAMPLES
from tests.support.processes import Procs
from tests.support.schedules import fires, new_timer, outcomes, step_minutes


@pytest.fixture
def flow(client: Client, workspace: Path) -> str:
    client.apply_workflow(
        native("nightly", {"a": shell_task(workspace, "a"), "b": shell_task(workspace, "b", depends_on=["a"])})
    )
    return "nightly"


def test_each_tick_starts_one_workflow_run_whose_logical_date_is_the_tick(client: Client, flow: str, timer, clock):
    client.create_schedule("flow-every-10", workflow=flow, cron="*/10 * * * *", overlap="allow", now=T0)
    step_minutes(timer, clock, 20)
    fired = fires(client, "flow-every-10")
    assert [f["tick"] for f in fired] == ["2026-11-21T08:10:00Z", "2026-11-21T08:20:00Z"]
    views = [client.get_workflow_run(f["run"]) for f in fired]
    assert [v["logical_date"] for v in views] == ["2026-11-21T08:10:00Z", "2026-11-21T08:20:00Z"]
    assert [v["workflow"] for v in views] == [flow, flow]
    assert [e["run_status"] for e in client.get_schedule("flow-every-10")["history"] if e["outcome"] == "fired"] == [
        "PENDING", "PENDING"]  # fmt: skip
    assert len(client.events(type="WorkflowRunStarted")) == 2
    assert verify(client.store).identical


def test_a_workflow_tick_fired_twice_by_racing_passes_starts_one_workflow_run(client: Client, flow: str, clock):
    created = client.create_schedule("flow-hourly", workflow=flow, cron="@hourly", now=T0)
    other = Client(settings=client.settings)
    stale = other.schedules.load(created["id"])  # the racing pass read the schedule before the first fired
    assert stale is not None
    clock.now = datetime(2026, 11, 21, 9, 0, 1, tzinfo=UTC)
    new_timer(client, clock, reconcile=False).run_pass()
    other.schedules.advance(stale, clock.now)  # decides the 09:00 tick again, from what it read
    assert len(fires(client, "flow-hourly")) == 1
    assert len(client.events(type="WorkflowRunStarted")) == 1


def test_overlap_skip_and_queue_wait_for_the_previous_workflow_run(client: Client, flow: str, timer, clock):
    client.create_schedule("flow-skip", workflow=flow, cron="*/10 * * * *", overlap="skip", now=T0)
    client.create_schedule("flow-queue", workflow=flow, cron="*/10 * * * *", overlap="queue", now=T0)
    step_minutes(timer, clock, 20)  # no dispatcher: the 08:10 workflow runs stay PENDING
    assert outcomes(client, "flow-skip") == [("08:10", "fired"), ("08:20", "skipped")]
    assert outcomes(client, "flow-queue") == [("08:10", "fired"), ("08:20", "queued")]
    client.cancel_workflow_run(fires(client, "flow-queue")[0]["run"])
    clock.advance(seconds=1)
    timer.run_pass()
    assert outcomes(client, "flow-queue") == [("08:10", "fired"), ("08:20", "fired")]
    assert client.get_workflow_run(fires(client, "flow-queue")[1]["run"])["logical_date"] == "2026-11-21T08:20:00Z"


def test_overlap_replace_cancels_the_previous_workflow_run(client: Client, flow: str, timer, clock):
    client.create_schedule("flow-replace", workflow=flow, cron="*/10 * * * *", overlap="replace", now=T0)
    step_minutes(timer, clock, 20)
    first, second = fires(client, "flow-replace")
    assert client.get_workflow_run(first["run"])["status"] == "CANCELLED"
    assert client.get_workflow_run(second["run"])["status"] == "PENDING"
    assert second["replaced"] == first["run"]


def test_a_scheduled_workflow_runs_for_real_and_its_reference_matches_the_tick(
    client: Client, workspace: Path, procs: Procs, redis_url: str, clock: Clock
):
    """A workflow referencing a definition: the definition's run for the same tick releases it."""
    client.define(definition("feed", job_file(workspace, "feed.sh", "true\n")))
    tasks = {"use": shell_task(workspace, "use", 'echo "day=$JOBLEDGER_LOGICAL_DATE"\n')}
    client.apply_workflow(native("gated-nightly", tasks, references=[{"definition": "feed"}]))
    client.create_schedule("feed-hourly", definition="feed", cron="@hourly", now=T0)
    client.create_schedule("gated-hourly", workflow="gated-nightly", cron="@hourly", now=T0)
    procs.fleet(redis_url)
    timer = new_timer(client, clock)
    clock.now = datetime(2026, 11, 21, 9, 0, 1, tzinfo=UTC)
    timer.run_pass()
    (fired,) = fires(client, "gated-hourly")
    view = client.wait_workflow_run(fired["run"], timeout=60)
    assert (view["status"], view["logical_date"]) == ("SUCCEEDED", "2026-11-21T09:00:00Z")
    assert view["references"][0]["run"] == fires(client, "feed-hourly")[0]["run"]
    assert [line.line for line in client.logs(view["tasks"]["use"]["run"])] == ["day=2026-11-21T09:00:00Z"]


def test_workflow_schedules_refuse_an_unknown_workflow_and_args_with_nothing_appended(
    client: Client, flow: str, procs: Procs
):
    before = len(client.events())
    with pytest.raises(NotFound, match="no workflow named 'ghost'"):
        client.create_schedule("s", workflow="ghost", cron="@daily", now=T0)
    with pytest.raises(InvalidInput, match="a workflow schedule takes no args"):
        client.create_schedule("s", workflow=flow, cron="@daily", args="--x 1", now=T0)
    out = procs.cli("schedule", "create", "s", "--workflow", "ghost", "--cron", "@daily")
    assert (out.returncode, out.stderr.strip()) == (2, "jobledger: no workflow named 'ghost'")
    assert len(client.events()) == before


def test_the_example_scheduled_workflow_is_created_as_its_readme_says(client: Client, procs: Procs, timer, clock):
    client.define_file(EXAMPLES / "definitions" / "hello-world.json")
    client.apply_workflow_file(EXAMPLES / "workflows" / "etl-native.yaml")
    readme = (EXAMPLES / "schedules" / "README.md").read_text()
    command = next(line for line in readme.splitlines() if "schedule create nightly-etl" in line)
    assert "--workflow etl-native" in command
    client.create_schedule("nightly-etl", workflow="etl-native", cron="0 3 * * *", timezone="Europe/Paris", now=T0)
    clock.now = datetime(2026, 11, 22, 2, 0, 5, tzinfo=UTC)  # 03:00 in Paris
    timer.run_pass()
    (fired,) = fires(client, "nightly-etl")
    assert client.get_workflow_run(fired["run"])["logical_date"] == "2026-11-22T03:00:00+01:00"
