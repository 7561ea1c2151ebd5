"""A mixed history for audit tests: definitions revised and deleted, a cluster, runs left in every status."""

from __future__ import annotations

import io
import os
from contextlib import redirect_stdout

import orjson

from queue_core import Client
from queue_core.cli.main import main
from queue_core.domain.runs import NON_ZERO_EXIT, SOURCE_UNAVAILABLE
from queue_core.readmodels.materialized import ReadModels
from queue_core.services.workflow_runs import WorkflowEngine
from tests.support.jobs import definition

Snapshot = list[tuple[str, object]]


def mixed_workload(client: Client, rounds: int = 1) -> list[str]:
    """Append a history through the same commands workers and dispatchers use; returns the run ids."""
    life = client.lifecycle
    client.create_cluster("pool", workers=2)
    client.define(definition("keep", "keep.sh", retries=1, delay=0.0))
    client.define(definition("gone", "gone.sh", cluster="pool"))
    client.define(definition("keep", "keep.sh", retries=1, delay=0.0, args="v2"))
    runs: list[str] = []
    for _ in range(rounds):
        pending = client.submit("keep")  # PENDING, Recently submitted
        queued = client.submit("keep", idempotency_key=f"k{len(runs)}")  # PENDING, In queue
        life.queue(queued, 1)
        running = client.submit("gone")  # RUNNING
        life.queue(running, 1)
        life.claim(running, 1, "w1", "host", 101)
        succeeded = client.submit("keep")
        life.queue(succeeded, 1)
        claim = life.claim(succeeded, 1, "w1", "host", 102)
        assert claim and life.succeed(claim)
        retrying = client.submit("keep")  # PENDING, Waiting to retry
        life.queue(retrying, 1)
        claim = life.claim(retrying, 1, "w2", "host", 103)
        assert claim and life.fail(claim, NON_ZERO_EXIT, 3, "exit 3")
        failed = client.submit("gone")  # FAILED, after its only attempt
        life.queue(failed, 1)
        claim = life.claim(failed, 1, "w2", "host", 104)
        assert claim and life.fail(claim, SOURCE_UNAVAILABLE, None, "no such file")
        lost = client.submit("gone")  # FAILED, WorkerLost
        life.queue(lost, 1)
        life.claim(lost, 1, "w3", "host", 105)
        life.declare_lost(lost, 1, "lease expired")
        cancelled = client.submit("keep")
        client.cancel(cancelled)
        runs += [pending, queued, running, succeeded, retrying, failed, lost, cancelled]
    client.delete_definition("gone")
    client.define(definition("gone", "gone.sh"))  # the name reused by a new definition
    return runs


def read_model_snapshot(client: Client) -> Snapshot:
    live = ReadModels(client.store)
    live.catch_up()
    return list(live.snapshot())


def cli_json(url: str, *args: str) -> object:
    """Run a CLI read command in this process against ``url`` and parse its ``--json`` output."""
    return orjson.loads(cli_text(url, *args, "--json"))


def cli_text(url: str, *args: str) -> str:
    """Run a CLI read command in this process against ``url``; what it printed (it must exit 0)."""
    previous = os.environ.get("REDIS_URL")
    os.environ["REDIS_URL"] = url
    out = io.StringIO()
    try:
        with redirect_stdout(out):
            code = main(list(args))
    finally:
        if previous is None:
            del os.environ["REDIS_URL"]
        else:
            os.environ["REDIS_URL"] = previous
    assert code == 0, out.getvalue()
    return out.getvalue()


def _inline(location: str, depends_on: list[str]) -> dict[str, object]:
    job = {"type": "SHELL", "source": {"type": "WORKSPACE", "sourceDef": {"path": "jobs"}}, "sourceLocation": location}
    return {"job": job, "depends_on": depends_on}


def workflow_workload(client: Client) -> tuple[list[str], list[str]]:
    """Workflow runs moved by the engine the dispatcher uses: one repaired and running again, one
    cancelled, one waiting for a reference. Returns (workflow run ids, their child run ids)."""
    life, engine = client.lifecycle, WorkflowEngine(client.store)
    client.apply_workflow({"name": "pair", "tasks": {"a": _inline("a.sh", []), "b": _inline("b.sh", ["a"])}})
    client.apply_workflow({"name": "gated", "tasks": {"x": _inline("x.sh", [])}, "references": [{"workflow": "pair"}]})
    repaired, cancelled = client.run_workflow("pair"), client.run_workflow("pair")
    waiting = client.run_workflow("gated", logical_date="2026-11-21")
    for run in (repaired, cancelled, waiting):
        engine.advance(run)

    def finish(workflow_run: str, task: str, ok: bool) -> None:
        child = client.get_workflow_run(workflow_run)["tasks"][task]["run"]
        life.queue(child, 1)
        claim = life.claim(child, 1, "w1", "host", 201)
        assert claim and (life.succeed(claim) if ok else life.fail(claim, NON_ZERO_EXIT, 1, "exit 1"))
        engine.advance(workflow_run)

    finish(repaired, "a", True)
    finish(repaired, "b", False)
    client.repair_workflow_run(repaired)
    engine.advance(repaired)  # b submitted again, left pending
    client.cancel_workflow_run(cancelled)  # a was pending: cancelled with it
    engine.advance(cancelled)
    views = [client.get_workflow_run(w) for w in (repaired, cancelled, waiting)]
    children = [run for view in views for task in view["tasks"].values() for run in task["runs"]]
    return [repaired, cancelled, waiting], children


def schedule_workload(client: Client) -> list[str]:
    """Schedules with history: fired, skipped and missed ticks (an outage), one paused, one deleted."""
    from datetime import timedelta

    from tests.support.clock import T0, Clock
    from tests.support.schedules import new_timer

    start = T0
    client.create_schedule("every-10", definition="keep", cron="*/10 * * * *", overlap="allow", now=start)
    client.create_schedule("skipping", workflow="pair", cron="*/10 * * * *", overlap="skip", now=start)
    client.create_schedule("paused", definition="keep", cron="@daily", now=start)
    client.create_schedule("dropped", definition="keep", cron="@hourly", now=start)
    client.pause_schedule("paused")
    client.delete_schedule("dropped")
    clock = Clock(start)
    timer = new_timer(client, clock)
    for minutes in (10, 20, 30, 80):  # then a 50-minute outage: ticks 08:40 to 09:20 missed
        clock.now = start + timedelta(minutes=minutes)
        timer.run_pass()
    return ["every-10", "skipping", "paused"]
