"""An array job of N children (default 10,000) against plain RQ's ``enqueue_many`` of the same N jobs.

The job is a SHELL job running `true`. jobledger: one ``Client.submit(..., array=N)`` on 2 fleet workers and a
dispatcher (which submits and queues the children in chunks), timed from the submit until ``Client.wait``
returns the parent SUCCEEDED (it ends after its last child), measured with ``JOBLEDGER_SANDBOX=on`` and
``off``. Plain RQ: N ``bash true.sh`` jobs through ``Queue.enqueue_many`` (one pipeline) on
``rq worker-pool -n 2``, timed from the enqueue until the finished registry (polled every 0.2 s) counts all N.

One system is up at a time, each on a fresh redis-server, the order rotating between repeats (the systems
and their warm-up are those of ``bench_runs.py``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import code_under_test, emit, figure, interruptible, machine, progress, ratio
from _plain_job import run_script
from bench_runs import FINISH_TIMEOUT_SECONDS, JOB_NAME, POLL_SECONDS, SCRIPT, Jobledger, PlainRQ, wait_for
from rq import Queue
from rq.registry import FailedJobRegistry, FinishedJobRegistry

CHILDREN = 10_000


def jobledger_rate(system: Jobledger, children: int) -> dict[str, float]:
    started = time.perf_counter()
    parent = system.client.submit(JOB_NAME, array=children)
    submitted = time.perf_counter() - started
    run = system.client.wait(parent, timeout=FINISH_TIMEOUT_SECONDS * 3)
    elapsed = time.perf_counter() - started
    if run["status"] != "SUCCEEDED" or run["array"]["counts"]["SUCCEEDED"] != children:
        raise RuntimeError(f"the array ended {run['status']}: {run['array']}")
    return {"rate": children / elapsed, "submit_seconds": submitted}


def plain_rate(system: PlainRQ, children: int) -> dict[str, float]:
    finished, failed = FinishedJobRegistry(queue=system.pool), FailedJobRegistry(queue=system.pool)
    before = finished.count
    started = time.perf_counter()
    datas = [Queue.prepare_data(run_script, (system.script,)) for _ in range(children)]
    system.pool.enqueue_many(datas)
    submitted = time.perf_counter() - started

    def all_done() -> bool:
        if failed.count:
            raise RuntimeError(f"a plain RQ job failed\n{system.procs.log_tails()}")
        return finished.count >= before + children

    wait_for(all_done, f"{children} plain RQ jobs", system.procs, FINISH_TIMEOUT_SECONDS * 3, POLL_SECONDS)
    return {"rate": children / (time.perf_counter() - started), "submit_seconds": submitted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of every figure (default 3)")
    parser.add_argument("--children", type=int, default=CHILDREN, help=f"the array's size (default {CHILDREN:,})")
    args = parser.parse_args()
    started = {"machine": machine(), "code": code_under_test()}
    rounds: list[dict[str, dict[str, float]]] = []
    with interruptible(), tempfile.TemporaryDirectory(prefix="bench-array-") as tmp:
        root = Path(tmp)
        workspace = root / "workspace"
        (workspace / "jobs").mkdir(parents=True)
        script = workspace / "jobs" / SCRIPT
        script.write_text("true\n")
        for k in range(args.repeat):
            progress(f"repeat {k + 1}/{args.repeat}")
            systems: list[Jobledger | PlainRQ] = [
                Jobledger(root / f"jl-on-{k}", workspace, "on"),
                PlainRQ(root / f"plain-{k}", script),
                Jobledger(root / f"jl-off-{k}", workspace, "off"),
            ]
            measured: dict[str, dict[str, float]] = {}
            for system in systems[k % 3 :] + systems[: k % 3]:
                try:
                    system.start()
                    if isinstance(system, Jobledger):
                        figures = jobledger_rate(system, args.children)
                    else:
                        figures = plain_rate(system, args.children)
                    progress(f"{system.name}: {figures['rate']:.1f} runs/s")
                    measured[system.name] = figures
                finally:
                    system.stop()
            rounds.append(measured)
    started["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    emit({"benchmark": "bench_array", **started, **report(rounds, args.repeat, args.children)})


def report(rounds: list[dict[str, dict[str, float]]], repeat: int, children: int) -> dict[str, Any]:
    def values(side: str, key: str) -> list[float]:
        return [r[side][key] for r in rounds]

    on, off = "jobledger_sandbox_on", "jobledger_sandbox_off"
    return {
        "placement": "benchmark client, redis-server, the 2 workers (+ dispatcher) and their job children all "
        "unpinned on 2 cores; one system up at a time",
        "repeat": repeat,
        "children": children,
        "job": f"SHELL job: bash {SCRIPT} (the file holds `true`)",
        "unit": "children (jobs) per second, submit to all succeeded",
        on: {"what": "Client.submit(array=N); 2 fleet workers + 1 dispatcher", **figure(values(on, "rate"))},
        off: {"what": "the same, JOBLEDGER_SANDBOX=off", **figure(values(off, "rate"))},
        "plain_rq": {"what": "Queue.enqueue_many; rq worker-pool -n 2", **figure(values("plain", "rate"))},
        "ratio_sandbox_on_plain": ratio(values(on, "rate"), values("plain", "rate")),
        "ratio_sandbox_off_plain": ratio(values(off, "rate"), values("plain", "rate")),
        "submit_seconds": {side: figure(values(side, "submit_seconds"), 3) for side in (on, off, "plain")},
        "aim": "ratio >= 1.5",
    }


if __name__ == "__main__":
    main()
