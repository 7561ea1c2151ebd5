"""A for-each task over N inputs (default 1,000) at concurrency C (default 50) against the same N runs
submitted by hand in batches of C.

The job is a SHELL job running `true` with its input as its argument. Both sides run on one jobledger (a
fresh redis-server, 2 fleet workers, 1 dispatcher; ``bench_runs.py``'s), one after the other, the order
rotating between repeats, after an unmeasured warm-up of both at 2 x C. For-each: a workflow of one task,
``forEach: {inputs: [0..N-1], concurrency: C}``, timed from ``Client.run_workflow`` until
``Client.wait_workflow_run`` returns it SUCCEEDED. By hand: C ``Client.submit`` calls with ``args`` the
input, then ``Client.wait`` on each of them, then the next C, timed from the first submit until the last
batch ended.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import code_under_test, emit, figure, interruptible, machine, progress, ratio
from bench_runs import FINISH_TIMEOUT_SECONDS, JOB_NAME, SCRIPT, Jobledger

INPUTS = 1_000
CONCURRENCY = 50
WORKFLOW, WARMUP = "bench-for-each", "bench-for-each-warmup"


def for_each_workflow(inputs: int, concurrency: int, name: str = WORKFLOW) -> dict[str, Any]:
    task = {"definition": JOB_NAME, "args": "${item}"}
    body = {"forEach": {"inputs": list(range(inputs)), "concurrency": concurrency, "task": task}}
    return {"name": name, "tasks": {"each": body}}


def for_each_seconds(system: Jobledger, inputs: int, name: str = WORKFLOW) -> float:
    started = time.perf_counter()
    run = system.client.run_workflow(name)
    view = system.client.wait_workflow_run(run, timeout=FINISH_TIMEOUT_SECONDS * 3)
    elapsed = time.perf_counter() - started
    if view["status"] != "SUCCEEDED":
        raise RuntimeError(f"the for-each ended {view['status']}: {view['tasks']['each']}")
    parent = system.client.get_run(view["tasks"]["each"]["run"])
    if parent["array"]["counts"]["SUCCEEDED"] != inputs:
        raise RuntimeError(f"the for-each's children: {parent['array']}")
    return elapsed


def by_hand_seconds(system: Jobledger, inputs: int, concurrency: int) -> float:
    started = time.perf_counter()
    for start in range(0, inputs, concurrency):
        batch = [system.client.submit(JOB_NAME, args=str(i)) for i in range(start, min(inputs, start + concurrency))]
        for run_id in batch:
            run = system.client.wait(run_id, timeout=FINISH_TIMEOUT_SECONDS)
            if run["status"] != "SUCCEEDED":
                raise RuntimeError(f"run {run_id} ended {run['status']}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of every figure (default 3)")
    parser.add_argument("--inputs", type=int, default=INPUTS, help=f"the for-each's inputs (default {INPUTS:,})")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help=f"at once (default {CONCURRENCY})")
    args = parser.parse_args()
    started = {"machine": machine(), "code": code_under_test()}
    rounds: list[dict[str, float]] = []
    with interruptible(), tempfile.TemporaryDirectory(prefix="bench-foreach-") as tmp:
        root = Path(tmp)
        workspace = root / "workspace"
        (workspace / "jobs").mkdir(parents=True)
        (workspace / "jobs" / SCRIPT).write_text("true\n")
        for k in range(args.repeat):
            progress(f"repeat {k + 1}/{args.repeat}")
            system = Jobledger(root / f"jl-{k}", workspace, "on")
            measured: dict[str, float] = {}
            try:
                system.start()
                system.client.apply_workflow(for_each_workflow(args.inputs, args.concurrency))
                # Warm both paths up (the first runs after a start are slower on either side), unmeasured.
                warm = min(args.inputs, 2 * args.concurrency)
                system.client.apply_workflow(for_each_workflow(warm, args.concurrency, WARMUP))
                for_each_seconds(system, warm, WARMUP)
                by_hand_seconds(system, warm, args.concurrency)
                sides = ["for_each", "by_hand"] if k % 2 == 0 else ["by_hand", "for_each"]
                for side in sides:
                    cpu_before = system._cpu()
                    if side == "for_each":
                        measured[side] = for_each_seconds(system, args.inputs)
                    else:
                        measured[side] = by_hand_seconds(system, args.inputs, args.concurrency)
                    for process, seconds in system._cpu().items():  # CPU ms per run: steadier than the wall clock
                        measured[f"{side}_cpu_ms_{process}"] = (seconds - cpu_before[process]) * 1000 / args.inputs
                    progress(f"{side}: {measured[side]:.1f} s")
            finally:
                system.stop()
            rounds.append(measured)
    started["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    emit({"benchmark": "bench_foreach", **started, **report(rounds, args)})


def report(rounds: list[dict[str, float]], args: argparse.Namespace) -> dict[str, Any]:
    def values(side: str) -> list[float]:
        return [r[side] for r in rounds]

    window = "a workflow run of one forEach task (the dispatcher's window)"

    return {
        "placement": "benchmark client, redis-server, the 2 workers (+ dispatcher) and their job children all "
        "unpinned on 2 cores; both sides on one jobledger, one after the other",
        "repeat": args.repeat,
        "inputs": args.inputs,
        "concurrency": args.concurrency,
        "job": f"SHELL job: bash {SCRIPT} ITEM (the file holds `true`), JOBLEDGER_SANDBOX=on",
        "unit": "seconds, start to all N SUCCEEDED",
        "for_each": {"what": window, **figure(values("for_each"))},
        "by_hand": {"what": "Client.submit x C, Client.wait on each, next C", **figure(values("by_hand"))},
        "ratio_for_each_by_hand": ratio(values("for_each"), values("by_hand")),
        "cpu_ms_per_run": {
            f"{side}_{process}": figure(values(f"{side}_cpu_ms_{process}"), 2)
            for side in ("for_each", "by_hand")
            for process in ("scheduler", "redis")
        },
        "aim": "ratio <= 1.10 (overhead at most 10%)",
    }


if __name__ == "__main__":
    main()
