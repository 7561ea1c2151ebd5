"""Chaos: a mixed workload runs while a seeded monkey kills and restarts workers, dispatchers and Redis itself.

For ``JOBLEDGER_CHAOS_SECONDS`` (default 20), 3 workers and 2 dispatchers (one also the schedule timer,
as ``jobledger scheduler`` runs) run under a supervisor that
starts again whatever dies (as ``jobledger up`` does), on this test's own redis-server (AOF, fsync
always). A workload thread submits runs that succeed, fail, fail then succeed on a retry, time out and
run long (some of them cancelled), array jobs (a few children, or enough to go on RQ in chunks), runs of a
diamond-shaped workflow (some cancelled), and one-time
schedules due seconds later (each tick must fire once, through the kills). The monkey,
seeded by ``JOBLEDGER_CHAOS_SEED`` (else a random seed, printed), picks one fault at a time: ``kill -9``
of a worker or a dispatcher, SIGTERM of a worker, ``kill -9`` of redis-server and its restart from its
AOF, SIGSTOP of redis-server for up to 2.5 s, a backup restored into the emptied store (under the maintenance
marker, as ``jobledger import`` holds it), or an upgrade (read models folded by other code: rebuilt by the next
reader, under the rebuild lease). Afterwards every run and workflow run ends, and the
oracle holds over the whole log with every marker the jobs left. Replay a failure with::

    JOBLEDGER_CHAOS_SEED=SEED JOBLEDGER_CHAOS_SECONDS=60 pytest tests/faults/test_chaos.py
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from queue_core import AlreadyTerminal, Client, JobledgerError, Settings, StoreUnavailable
from queue_core.cli.fleet import Fleet
from queue_core.eventlog.archive import history
from queue_core.eventlog.health import record_epoch
from queue_core.eventlog.maintenance_mode import maintenance
from queue_core.eventlog.store import EventStore
from queue_core.eventlog.transfer import import_export, write_export
from queue_core.keys import Keys
from queue_core.readmodels.materialized import ReadModels, rebuild
from queue_core.readmodels.oracle import check_log
from scheduler.rq_jobs import MIN_CHUNKED
from tests.support.faults import assert_log_holds, marks
from tests.support.jobs import definition, job_file
from tests.support.redis_server import RedisServer

SECONDS = float(os.environ.get("JOBLEDGER_CHAOS_SECONDS", "20"))
SEED = int(os.environ.get("JOBLEDGER_CHAOS_SEED") or random.SystemRandom().randrange(10**6))
WORKERS, DISPATCHERS = 3, 2
DRAIN_SECONDS = 240.0
ONE_SECOND = 1 / 60  # definitions count minutes


def _jobs(workspace: Path, markers: Path) -> dict[str, dict]:
    """The workload's definitions; each job first leaves a ``RUN:ATTEMPT`` marker."""
    mark = f'echo "$JOBLEDGER_RUN_ID:$JOBLEDGER_ATTEMPT" >> {markers}\n'
    files = {
        "ok": "sleep 0.1\n",
        "fails": "exit 3\n",
        "flaky": '[ "$JOBLEDGER_ATTEMPT" -ge 2 ] || exit 1\n',
        "slow": "exec sleep 30\n",
        "long": "exec sleep 3\n",
    }
    for name, body in files.items():
        job_file(workspace, f"{name}.sh", mark + body)
    return {
        "ok": definition("ok", "ok.sh", timeout=10 * ONE_SECOND),
        "fails": definition("fails", "fails.sh", retries=1, timeout=10 * ONE_SECOND),
        "flaky": definition("flaky", "flaky.sh", retries=2, delay=ONE_SECOND / 2, timeout=10 * ONE_SECOND),
        "slow": definition("slow", "slow.sh", timeout=ONE_SECOND),
        "long": definition("long", "long.sh", retries=1, timeout=10 * ONE_SECOND),
    }


def _diamond() -> dict:
    task = {"job": {"type": "SHELL", "source": {"type": "WORKSPACE", "sourceDef": {"path": "jobs"}},
                    "sourceLocation": "ok.sh", "timeout": 10 * ONE_SECOND}}  # fmt: skip
    tasks = {"a": task, "b": {**task, "depends_on": ["a"]}, "c": {**task, "depends_on": ["a"]}}
    return {"name": "diamond", "tasks": {**tasks, "d": {**task, "depends_on": ["b", "c"]}}}


@dataclass
class Ledger:
    """What the workload was told: ids acknowledged, submissions to try again, and what happened."""

    acknowledged: list[str] = field(default_factory=list)
    workflow_runs: list[str] = field(default_factory=list)
    schedules: list[str] = field(default_factory=list)  # one-time schedules: each tick must fire once
    unanswered: list[tuple[str, str, int | None]] = field(default_factory=list)  # (definition, key, array size)
    counts: Counter[str] = field(default_factory=Counter)


class Supervised:
    """The fleet, with its dead started again; the monkey and the supervisor share it under a lock."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.lock = threading.Lock()

    def pids(self, role: str) -> list[int]:
        with self.lock:
            return [p.process.pid for p in self.fleet.procs if p.process and p.role.startswith(role)]

    def restart_dead(self) -> None:
        with self.lock:
            self.fleet.restart_dead()


def _workload(settings: Settings, stop: threading.Event, ledger: Ledger, rng: random.Random) -> None:
    client: Client | None = None
    submitted = 0
    while not stop.is_set():
        try:
            client = client or Client(settings=settings)
            kinds = ["ok", "fails", "flaky", "slow", "long", "workflow", "cancel", "schedule", "array"]
            kind = rng.choices(kinds, [4, 2, 2, 1, 2, 1, 2, 1, 1])[0]
            if kind == "schedule":
                name = f"chaos-at-{len(ledger.schedules)}"
                at = (datetime.now(UTC) + timedelta(seconds=rng.uniform(2, 5))).isoformat()
                client.create_schedule(name, definition="ok", at=at, catchup="all")
                ledger.schedules.append(name)
            elif kind == "workflow":
                ledger.workflow_runs.append(client.run_workflow("diamond"))
            elif kind == "cancel" and ledger.acknowledged:
                workflow = ledger.workflow_runs and rng.random() < 0.2
                cancel: Callable[[str], object] = client.cancel_workflow_run if workflow else client.cancel
                cancel(rng.choice(ledger.workflow_runs if workflow else ledger.acknowledged))
            elif kind != "cancel":
                submitted += 1
                key = f"chaos-{submitted}"
                # An array of a few children, or one big enough to go on RQ in chunks.
                name, size = ("ok", rng.choice([3, MIN_CHUNKED])) if kind == "array" else (kind, None)
                try:
                    ledger.acknowledged.append(client.submit(name, idempotency_key=key, array=size))
                except StoreUnavailable:
                    ledger.unanswered.append((name, key, size))
                    raise
            ledger.counts[kind] += 1
        except StoreUnavailable:
            client = None
            ledger.counts["store unavailable"] += 1
        except AlreadyTerminal:
            ledger.counts["cancel too late"] += 1
        except JobledgerError as exc:  # a cancel racing the end of a workflow run, and the like
            ledger.counts[type(exc).__name__] += 1
        stop.wait(rng.uniform(0.1, 0.4))


EMPTY_BUT_THE_MARKER = """
for _, key in ipairs(redis.call('KEYS', '*')) do
  if key ~= ARGV[1] and key ~= ARGV[2] then redis.call('DEL', key) end
end
"""


def _restore(server: RedisServer, settings: Settings, backup: Path) -> None:
    """A backup taken and restored into the emptied store while everything runs, as ``jobledger import`` does it,
    all under the maintenance marker: appends are refused from before the export to after the import, so the
    backup holds every acknowledged event."""
    connection = server.client()
    store = EventStore(connection)
    with maintenance(store, "restore"):
        write_export(backup, history(store), chain_start="")
        # The store comes back empty (RQ's queues too) but for the marker, at once, as a Redis restarted without
        # its data does: emptied key by key, a reader could fold the log into a checkpoint behind the deletions.
        connection.eval(EMPTY_BUT_THE_MARKER, 0, store.keys.maintenance, store.keys.maintenance_lease)
        import_export(store, backup)
        record_epoch(store, settings)
        rebuild(store, ReadModels(store))


def _upgrade(server: RedisServer) -> None:
    """A new version whose fold code differs: the next reader rebuilds the read models, under the rebuild lease."""
    server.client().set(Keys().folded_by("live"), "an-older-fold")


def _monkey(
    fleet: Supervised, server: RedisServer, stop: threading.Event, rng: random.Random, done: list[str],
    settings: Settings, backup: Path,
) -> None:  # fmt: skip
    while not stop.wait(rng.uniform(0.5, 1.5)):
        action = rng.choices(
            ["kill worker", "kill dispatcher", "stop worker", "kill redis", "freeze redis", "restore", "upgrade"],
            [3, 2, 1, 1, 1, 1, 1],
        )[0]
        if action == "restore":
            _restore(server, settings, backup)
        elif action == "upgrade":
            _upgrade(server)
        elif action in ("kill worker", "kill dispatcher", "stop worker"):
            pids = fleet.pids("worker" if "worker" in action else "dispatcher")
            if not pids:
                continue
            pid = rng.choice(pids)
            try:
                if action == "stop worker":
                    os.kill(pid, signal.SIGTERM)
                else:
                    os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        elif action == "kill redis":
            server.kill()
            time.sleep(rng.uniform(0.0, 1.0))
            server.start()
        else:
            assert server.process is not None
            os.kill(server.process.pid, signal.SIGSTOP)
            time.sleep(rng.uniform(0.2, 2.5))
            os.kill(server.process.pid, signal.SIGCONT)
        done.append(action)


def _stuck(client: Client, problems: tuple[str, ...]) -> str:
    """What the runs that did not end are doing, and where RQ holds them, for the failure's message."""
    lines = []
    for problem in problems[:10]:
        lines.append(problem)
        if problem.startswith("run ") and problem.endswith("never ended"):
            run = client.get_run(problem.split()[1])
            attempt = len(run["attempts"]) or 1
            job = client.redis.hgetall(f"rq:job:{run['id']}-{attempt}") or {}
            lines.append(f"  {run['status']} {run['reason']} attempts={run['attempts']} rq={job.get(b'status')}")
    return "\n".join(lines)


def _supervise(fleet: Supervised, stop: threading.Event) -> None:
    while not stop.wait(0.2):
        fleet.restart_dead()


@pytest.mark.timeout(SECONDS + DRAIN_SECONDS + 120)
def test_a_mixed_workload_under_a_monkey_ends_every_run_and_the_log_holds(
    store_server: RedisServer, settings: Settings, env: dict[str, str], workspace: Path, tmp_path: Path
):
    print(f"chaos seed {SEED}, {SECONDS:g} s (replay: JOBLEDGER_CHAOS_SEED={SEED})")
    markers = tmp_path / "markers"
    client = Client(settings=settings)
    for raw in _jobs(workspace, markers).values():
        client.define(raw)
    client.apply_workflow(_diamond())
    fleet = Supervised(Fleet(store_server.url, tmp_path / "logs", env))
    for index in range(DISPATCHERS):
        fleet.fleet.start_dispatcher(timer=index == 0)  # one is a scheduler: it fires the schedules too
    fleet.fleet.ensure_workers("default", WORKERS)
    ledger, faults = Ledger(), []
    stop_chaos, stop_fleet = threading.Event(), threading.Event()
    threads = [
        threading.Thread(target=_workload, args=(settings, stop_chaos, ledger, random.Random(SEED + 1)), daemon=True),
        threading.Thread(
            target=_monkey,
            args=(fleet, store_server, stop_chaos, random.Random(SEED), faults, settings, tmp_path / "backup.gz"),
            daemon=True,
        ),
    ]
    supervisor = threading.Thread(target=_supervise, args=(fleet, stop_fleet), daemon=True)
    for thread in [*threads, supervisor]:
        thread.start()
    try:
        time.sleep(SECONDS)  # the chaos lasts this long: a duration, not a wait for a condition
        stop_chaos.set()
        for thread in threads:
            thread.join(timeout=60)
        client = Client(settings=settings)
        for name, key, size in ledger.unanswered:  # the caller tries again with the same key
            ledger.acknowledged.append(client.submit(name, idempotency_key=key, array=size))
        deadline = time.monotonic() + DRAIN_SECONDS
        while (problems := check_log(client.store, require_terminal=True, projections=False).problems) or any(
            s["status"] != "ENDED" for s in client.list_schedules()
        ):
            assert time.monotonic() < deadline, f"seed {SEED}: not over after the chaos:\n{_stuck(client, problems)}"
            time.sleep(0.5)
    finally:
        stop_chaos.set()
        stop_fleet.set()
        supervisor.join(timeout=30)
        fleet.fleet.stop(grace=5)
    assert faults, f"seed {SEED}: the monkey did nothing"
    final = assert_log_holds(client, [*ledger.acknowledged, *ledger.workflow_runs], markers)
    print(f"seed {SEED}: faults {dict(Counter(faults))}; workload {dict(ledger.counts)}; {final.summary()}")
    assert final.terminal_runs == final.runs > 0 and len(marks(markers)) > 0
