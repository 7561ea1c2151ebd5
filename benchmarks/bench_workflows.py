"""A 200-task fan-out/fan-in workflow against the same 200 runs submitted by hand, and plain RQ's depends_on.

The DAG: one ``root`` task, 198 ``mid`` tasks that depend on it, one ``sink`` that depends on all 198;
every task is a SHELL job running ``bash true.sh``. On one fleet (a fresh redis-server, 2 workers,
1 dispatcher) each repeat times, back to back:

- workflow: ``Client.run_workflow`` until ``wait_workflow_run`` returns SUCCEEDED;
- by hand: the same 200 runs through ``Client.submit`` in the same order a script would use —
  submit root, wait; submit the 198, wait for each; submit sink, wait — with no workflow machinery.

The ratio workflow / by hand is the cost of the DAG machinery (aim: at most 1.10). From the log's own
timestamps: the time from the sink's ``RunSucceeded`` to ``WorkflowRunFinished`` (the workflow's
end after its last task's), and from the last mid task's end to the sink's submission (the fan-in).

The plain RQ peer runs the same DAG with RQ's own ``depends_on`` on ``rq worker-pool -n 2`` (first
enqueue until the sink's job is finished), on its own fresh redis-server, for context.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
from _harness import (
    Processes,
    check_children_import_code_under_test,
    code_under_test,
    emit,
    figure,
    interruptible,
    machine,
    parse_args,
    progress,
    ratio,
    subprocess_env,
)
from _plain_job import run_script
from _redis import RedisServer
from bench_runs import READY_TIMEOUT_SECONDS, WARMUP_JOBS, definition, registered, wait_for
from rq import Queue, Worker
from rq.job import Job, JobStatus

from queue_core import Client, Settings
from queue_core.cli.fleet import fleet_command

MIDS = 198
TASKS = MIDS + 2
SCRIPT = "true.sh"
TIMEOUT_SECONDS = 600.0


def _task(depends_on: list[str]) -> dict[str, Any]:
    job = {"type": "SHELL", "source": {"type": "WORKSPACE", "sourceDef": {"path": "jobs"}},
           "sourceLocation": SCRIPT, "timeout": 1}  # fmt: skip
    return {"job": job, "depends_on": depends_on}


def fan_workflow() -> dict[str, Any]:
    mids = [f"mid{i:03d}" for i in range(MIDS)]
    tasks = {"root": _task([]), **{m: _task(["root"]) for m in mids}, "sink": _task(mids)}
    return {"name": "fan", "tasks": tasks}


def _moment(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


class Fleet:
    """A fresh redis-server, two fleet workers and one dispatcher."""

    def __init__(self, work: Path, workspace: Path) -> None:
        self.server = RedisServer(work / "redis")
        self.procs = Processes(work / "logs")
        self.home, self.workspace = work / "home", workspace

    def start(self) -> None:
        url = self.server.start().url
        env = subprocess_env(REDIS_URL=url, JOBLEDGER_HOME=str(self.home), JOBLEDGER_WORKSPACE=str(self.workspace))
        check_children_import_code_under_test(env, self.procs.log_dir)
        self.client = Client(settings=Settings(redis_url=url, home=self.home, workspace=self.workspace))
        self.client.define(definition("true", SCRIPT))
        self.client.apply_workflow(fan_workflow())
        worker = [sys.executable, "-m", "rq.cli", *fleet_command(url, "default")[1:]]
        self.procs.spawn(worker, "jl-worker-0", env)
        self.procs.spawn(worker, "jl-worker-1", env)
        self.procs.spawn([sys.executable, "-m", "scheduler"], "jl-dispatcher", env)
        connection = self.server.client()
        wait_for(
            lambda: len(Worker.all(connection=connection)) == 2, "2 workers", self.procs, READY_TIMEOUT_SECONDS, 0.05
        )
        for _ in range(WARMUP_JOBS):
            self.client.wait(self.client.submit("true"), timeout=60)

    def stop(self) -> None:
        self.procs.stop()
        self.server.stop()

    def workflow(self) -> dict[str, float]:
        started = time.perf_counter()
        run_id = self.client.run_workflow("fan")
        view = self.client.wait_workflow_run(run_id, timeout=TIMEOUT_SECONDS)
        elapsed = time.perf_counter() - started
        if view["status"] != "SUCCEEDED":
            raise RuntimeError(f"the workflow run ended {view['status']}: {view['reason']}")
        events = self.client.events(aggregate=run_id)
        finished = _moment(next(r.time for r in reversed(events) if r.type == "WorkflowRunFinished"))
        sink = self.client.get_run(view["tasks"]["sink"]["run"])
        mids = [self.client.get_run(view["tasks"][f"mid{i:03d}"]["run"]) for i in range(MIDS)]
        mids_end = max(_moment(run["finished_at"]) for run in mids)  # each RunSucceeded, not TaskFinished
        return {
            "workflow_seconds": elapsed,
            "last_task_to_workflow_end_ms": (finished - _moment(sink["finished_at"])).total_seconds() * 1000,
            "fan_in_ms": (_moment(sink["submitted_at"]) - mids_end).total_seconds() * 1000,
        }

    def by_hand(self) -> dict[str, float]:
        started = time.perf_counter()
        self._all([self.client.submit("true")])
        self._all([self.client.submit("true") for _ in range(MIDS)])
        self._all([self.client.submit("true")])
        return {"by_hand_seconds": time.perf_counter() - started}

    def _all(self, run_ids: list[str]) -> None:
        for run_id in run_ids:
            if self.client.wait(run_id, timeout=TIMEOUT_SECONDS)["status"] != "SUCCEEDED":
                raise RuntimeError(f"run {run_id} did not succeed")


class PlainRQ:
    """The same DAG as plain RQ jobs with ``depends_on``, on ``rq worker-pool -n 2``."""

    def __init__(self, work: Path, script: Path) -> None:
        self.server = RedisServer(work / "redis")
        self.procs = Processes(work / "logs")
        self.script = str(script)

    def start(self) -> None:
        self.server.start()
        self.queue = Queue("default", connection=redis.Redis.from_url(self.server.url))
        rq = [sys.executable, "-m", "rq.cli", "worker-pool", "-n", "2", "-u", self.server.url, "default"]
        self.procs.spawn(rq, "rq-worker-pool", subprocess_env())
        wait_for(registered(self.queue, 2), "2 rq workers", self.procs, READY_TIMEOUT_SECONDS, 0.05)
        for _ in range(WARMUP_JOBS):
            self.queue.enqueue(run_script, self.script).latest_result(timeout=60)

    def stop(self) -> None:
        self.procs.stop()
        self.server.stop()

    def dag(self) -> dict[str, float]:
        started = time.perf_counter()
        root = self.queue.enqueue(run_script, self.script)
        mids = [self.queue.enqueue(run_script, self.script, depends_on=root) for _ in range(MIDS)]
        sink = self.queue.enqueue(run_script, self.script, depends_on=mids)

        def sink_done() -> bool:
            status = sink.get_status(refresh=True)
            if status in (JobStatus.FAILED, JobStatus.CANCELED, JobStatus.STOPPED):
                raise RuntimeError(f"the plain RQ sink ended {status}\n{self.procs.log_tails()}")
            return status == JobStatus.FINISHED

        wait_for(sink_done, "the plain RQ sink", self.procs, TIMEOUT_SECONDS, 0.02)
        elapsed = time.perf_counter() - started
        ended = [j for j in Job.fetch_many([root.id, *[m.id for m in mids]], connection=self.queue.connection) if j]
        if len(ended) != MIDS + 1:
            raise RuntimeError("plain RQ lost jobs")
        return {"plain_rq_seconds": elapsed}


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    started = {"machine": machine(), "code": code_under_test()}
    rounds: list[dict[str, float]] = []
    with interruptible(), tempfile.TemporaryDirectory(prefix="bench-workflows-") as tmp:
        root = Path(tmp)
        workspace = root / "workspace"
        (workspace / "jobs").mkdir(parents=True)
        script = workspace / "jobs" / SCRIPT
        script.write_text("true\n")
        for k in range(args.repeat):
            progress(f"repeat {k + 1}/{args.repeat}")
            figures: dict[str, float] = {}
            fleet = Fleet(root / f"jl-{k}", workspace)
            try:
                fleet.start()
                # Alternate which goes first, so a burst of load elsewhere does not always hit one side.
                for phase in (fleet.by_hand, fleet.workflow) if k % 2 else (fleet.workflow, fleet.by_hand):
                    figures |= phase()
                    fleet.procs.check_alive()
            finally:
                fleet.stop()
            plain = PlainRQ(root / f"plain-{k}", script)
            try:
                plain.start()
                figures |= plain.dag()
            finally:
                plain.stop()
            progress(", ".join(f"{key} {value:.2f}" for key, value in figures.items()))
            rounds.append(figures)
    started["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]

    def values(key: str) -> list[float]:
        return [r[key] for r in rounds]

    emit(
        {
            "benchmark": "bench_workflows",
            **started,
            "repeat": args.repeat,
            "dag": f"root -> {MIDS} tasks -> sink ({TASKS} SHELL tasks running `bash {SCRIPT}`), 2 workers",
            "seconds": {
                "workflow": figure(values("workflow_seconds"), 2),
                "by_hand": figure(values("by_hand_seconds"), 2),
                "plain_rq_depends_on": figure(values("plain_rq_seconds"), 2),
            },
            "ratio_workflow_by_hand": {
                **ratio(values("workflow_seconds"), values("by_hand_seconds")),
                "aim": "<= 1.10",
            },
            "ratio_workflow_plain_rq": ratio(values("workflow_seconds"), values("plain_rq_seconds")),
            "last_task_to_workflow_end_ms": figure(values("last_task_to_workflow_end_ms"), 1),
            "fan_in_ms": {
                "what": "the last of the 198 tasks' end to the sink's submission",
                **figure(values("fan_in_ms"), 1),
            },
        }
    )


if __name__ == "__main__":
    main()
