"""Concurrency limits, pools and priorities end to end: real dispatchers and plain rq workers, the slots in use
checked from the log's events (not sampled), through a worker killed with SIGKILL and a cancel."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from queue_core import Client, InvalidInput
from queue_core.cli.main import main
from queue_core.domain.runs import IN_QUEUE, TERMINAL
from queue_core.eventlog.events import Recorded
from tests.support.jobs import definition, job_file, native, shell_task
from tests.support.processes import Procs, eventually, process_table

ENDS = ("RunSucceeded", "RunFailed", "RunCancelled")


def controlled(name: str, **control: Any) -> dict[str, Any]:
    raw = definition(name, "work.sh", timeout=1.0)
    raw["config"].update(control)
    return raw


def most_at_once(events: list[Recorded], runs: set[str]) -> tuple[int, int]:
    """The most of ``runs`` ever holding a slot at once (let through by the gate and not ended) and ever running
    (started, their attempt not ended), walking the log in order."""
    held: set[str] = set()
    running: set[str] = set()
    most_held = most_running = 0
    for rec in events:
        if rec.aggregate not in runs:
            continue
        if rec.type == "RunQueued":
            held.add(rec.aggregate)
        elif rec.type == "RunStarted":
            running.add(rec.aggregate)
        elif rec.type == "RunAttemptFailed":
            running.discard(rec.aggregate)
        elif rec.type in ENDS:
            held.discard(rec.aggregate)
            running.discard(rec.aggregate)
        most_held, most_running = max(most_held, len(held)), max(most_running, len(running))
    return most_held, most_running


@pytest.fixture
def cli(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """``jobledger`` in this process (a process per command costs a second): its exit code, stdout and stderr."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse's own refusals
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def worker_of(fleet: Procs, pid: int) -> int:
    """The worker process (a session of its own) that ``pid`` is, or descends from."""
    workers, table = {p.pid for p in fleet.procs}, process_table()
    while pid not in workers:
        pid = table[pid][0]
    return pid


def status_of(client: Client, run_id: str) -> dict[str, Any]:
    return client.get_run(run_id)


@pytest.mark.fleet(workers=3)
def test_ten_runs_on_a_two_slot_pool_never_hold_more_than_two_through_a_kill_and_a_cancel(
    client: Client, workspace: Path, fleet: Procs
):
    job_file(workspace, "work.sh", '[ "$1" = hang ] && sleep 8; sleep 0.2\n')
    client.create_pool("etl", 2)
    client.define(controlled("loads", pool="etl"))
    killed, cancelled = client.submit("loads", args="hang"), client.submit("loads", args="hang")
    quick = [client.submit("loads") for _ in range(8)]
    runs = {killed, cancelled, *quick}
    eventually(lambda: all(status_of(client, r)["status"] == "RUNNING" for r in (killed, cancelled)), 20)
    assert status_of(client, quick[0])["reason"] == "Waiting for pool etl"
    assert client.get_pool("etl")["used"] == 2 and len(client.get_pool("etl")["waiting"]) == 8
    # The whole worker running one of them, parent and horse, dies without a word: its run holds its slot
    # until the lease runs out and the dispatcher records WorkerLost.
    os.killpg(worker_of(fleet, client.events(aggregate=killed, type="RunStarted")[0].event.pid), signal.SIGKILL)  # type: ignore[attr-defined]
    client.cancel(cancelled)
    for run_id in runs:
        eventually(lambda r=run_id: status_of(client, r)["status"] in TERMINAL, 40, what=f"run {run_id} to end")
    assert status_of(client, killed)["reason"] == "WorkerLost"
    assert status_of(client, cancelled)["status"] == "CANCELLED"
    assert all(status_of(client, r)["status"] == "SUCCEEDED" for r in quick)
    events = client.events()
    assert most_at_once(events, runs) == (2, 2)
    # The killed run's slot was held until its WorkerLost: only one other run was let through before it.
    lost = next(e.position for e in events if e.aggregate == killed and e.type == "RunFailed")
    let_through_before = [e for e in events if e.type == "RunQueued" and e.aggregate in quick and e.position < lost]
    cancel_at = next(e.position for e in events if e.aggregate == cancelled and e.type == "RunCancelled")
    assert all(e.position > cancel_at for e in let_through_before)
    waited = {e.aggregate for e in events if e.type == "RunWaiting" and e.event.reason == "Waiting for pool etl"}  # type: ignore[attr-defined]
    assert waited == set(quick)
    assert client.get_pool("etl")["used"] == 0


@pytest.mark.fleet(workers=2)
def test_max_concurrent_runs_holds_runs_back_in_submission_order(client: Client, workspace: Path, fleet: Procs):
    job_file(workspace, "work.sh", "sleep 0.3\n")
    client.define(controlled("limited", maxConcurrentRuns=1))
    runs = [client.submit("limited") for _ in range(4)]
    eventually(lambda: status_of(client, runs[1])["reason"] == "Waiting for a slot (maxConcurrentRuns 1)", 20)
    client.cancel(runs[1])  # a waiting run cancelled: nothing held, nothing stuck
    for run_id in runs:
        eventually(lambda r=run_id: status_of(client, r)["status"] in TERMINAL, 30)
    events = client.events()
    assert most_at_once(events, set(runs)) == (1, 1)
    starts = [e.aggregate for e in events if e.type == "RunStarted"]
    assert starts == [runs[0], runs[2], runs[3]]


@pytest.mark.fleet(workers=0)
def test_a_backlog_drains_in_priority_order(client: Client, workspace: Path, fleet: Procs, redis_url: str):
    job_file(workspace, "work.sh", "true\n")
    client.define(definition("plain", "work.sh"))
    client.define(controlled("urgent", priority=8))
    submitted = [
        client.submit("plain"),  # 5, the default
        client.submit("plain", priority=1),
        client.submit("urgent"),  # 8, the definition's
        client.submit("plain", priority=9),
        client.submit("plain"),
        client.submit("urgent", priority=0),  # submit's priority over the definition's
    ]
    eventually(lambda: all(status_of(client, r)["reason"] == IN_QUEUE for r in submitted), 20)
    queue = redis.Redis.from_url(redis_url)  # queued on the log, then put on RQ by the dispatcher: all six there
    eventually(lambda: queue.llen("rq:queue:default") == len(submitted), 20)
    fleet.worker(redis_url)  # one plain rq worker on the default cluster
    for run_id in submitted:
        eventually(lambda r=run_id: status_of(client, r)["status"] == "SUCCEEDED", 30)
    starts = [e.aggregate for e in client.events(type="RunStarted")]
    order = [3, 2, 0, 4, 1, 5]  # 9, 8, 5, 5, 1, 0: equal priorities in submission order
    assert starts == [submitted[i] for i in order]


@pytest.mark.fleet(workers=0)
def test_a_cluster_whose_workers_run_elsewhere(
    client: Client, workspace: Path, fleet: Procs, redis_url: str, cli: Callable[..., tuple[int, str, str]]
):
    job_file(workspace, "work.sh", "true\n")
    assert cli("cluster", "create", "remote", "--workers", "0")[0] == 0
    client.define(definition("far", "work.sh", cluster="remote"))
    run_id = client.submit("far")
    eventually(lambda: status_of(client, run_id)["reason"] == IN_QUEUE, 20)

    def remote() -> dict[str, Any]:
        code, out, err = cli("cluster", "list", "--json")
        assert code == 0, err
        return next(c for c in json.loads(out) if c["name"] == "remote")

    assert (remote()["workers"], remote()["workers_seen"], remote()["waiting"]) == (0, [], 1)
    fleet.worker(redis_url, "remote")  # what another machine runs: the plain rq worker line
    eventually(lambda: status_of(client, run_id)["status"] == "SUCCEEDED", 30)
    seen = remote()
    assert len(seen["workers_seen"]) == 1 and seen["waiting"] == 0
    table = cli("cluster", "list")[1]
    assert "WORKERS SEEN" in table and "WAITING" in table


def test_bad_run_control_input_is_one_line_exit_2_and_appends_nothing(
    client: Client, workspace: Path, cli: Callable[..., tuple[int, str, str]]
):
    job_file(workspace, "work.sh", "true\n")
    (workspace / "pooled.json").write_text(json.dumps(controlled("pooled", pool="nowhere")))
    (workspace / "greedy.json").write_text(json.dumps(controlled("greedy", pool="etl", poolSlots=3)))
    assert cli("pool", "create", "etl", "--slots", "2")[0] == 0
    client.define(definition("plain", "work.sh"))
    before = len(client.events())
    tries = {
        ("pool", "create", "p", "--slots", "0"): "slots",
        ("pool", "create", "etl", "--slots", "2"): "already exists",
        ("pool", "resize", "etl", "--slots", "-1"): "slots",
        ("pool", "resize", "nowhere", "--slots", "2"): "no pool named 'nowhere'",
        ("define", str(workspace / "pooled.json")): "config.pool",
        ("define", str(workspace / "greedy.json")): "config.poolSlots",
        ("submit", "plain", "--priority", "12"): "--priority",
        ("submit", "plain", "--priority", "x"): "--priority",
        ("cluster", "create", "c", "--workers", "-1"): "--workers",
    }
    for argv, named in tries.items():
        code, _, err = cli(*argv)
        assert code == 2 and named in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert len(client.events()) == before
    client.define(controlled("pooled", pool="etl"))
    run_id = client.submit("pooled")  # no dispatcher: it waits, and the pool is in use
    code, _, err = cli("pool", "delete", "etl")
    assert code == 2 and "in use" in err
    client.cancel(run_id)
    assert cli("pool", "delete", "etl")[0] == 0
    code, _, err = cli("submit", "pooled")
    assert code == 2 and "no pool named 'etl'" in err


def test_a_workflow_task_names_its_pool_and_priority(client: Client, workspace: Path):
    client.create_pool("etl", 2)
    tasks = {
        "load": shell_task(workspace, "load", pool="etl", poolSlots=2, priority=8),
        "plain": shell_task(workspace, "plain", depends_on=["load"]),
    }
    client.apply_workflow(native("nightly", tasks))
    plan = client.plan_workflow("nightly")
    load, plain = plan.tasks["load"]["job"], plan.tasks["plain"]["job"]
    assert (load["pool"], load["poolSlots"], load["priority"]) == ("etl", 2, 8)
    assert "pool" not in plain and "priority" not in plain
    for task, field in ((dict(pool="nowhere"), "tasks.x.pool"), (dict(pool="etl", poolSlots=3), "tasks.x.poolSlots"),
                        (dict(priority=12), "tasks.x.priority")):  # fmt: skip
        with pytest.raises(InvalidInput) as raised:
            client.apply_workflow(native("bad", {"x": shell_task(workspace, "x", **task)}))
        assert raised.value.field == field
