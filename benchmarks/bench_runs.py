"""Runs end to end: jobledger (2 fleet workers + a dispatcher), its jobs sandboxed and not, against plain RQ.

The job is a SHELL job running `true`. jobledger is measured twice per repeat: with ``JOBLEDGER_SANDBOX=on``
(each attempt in bubblewrap, as the job user) and ``off`` (the same allowlisted environment, no bubblewrap).

Throughput: 500 runs of ``bash true.sh`` submitted through ``Client.submit``, timed from the first submit
until ``list_runs(status="SUCCEEDED")`` (polled every 0.2 s) counts all 500; the peer is the same 500
``bash true.sh`` subprocess calls as plain RQ jobs on ``rq worker-pool -n 2`` with RQ's defaults (the
forking ``Worker``, pickle), timed from the first enqueue until the finished registry (polled every
0.2 s) counts all 500.

Latency: one run at a time on an idle fleet, from just before ``submit`` until ``Client.wait`` returns
SUCCEEDED; the peer is one job at a time on a plain ``rq worker -w rq.worker.SimpleWorker``, from just
before ``enqueue`` until ``job.latest_result(timeout=...)`` (RQ's own blocking XREAD) returns.

Each repeat brings up one system at a time on a fresh redis-server (not timed; two warm-up jobs per
worker set), the order rotating between repeats: systems measure throughput then latency and latency
then throughput in turn, so latency phases sit back to back. While plain RQ is up,
its worker-pool and its SimpleWorker both run; the one not being measured sits idle in its dequeue.

With ``--features`` it measures instead what run control and notifications cost (issue 18): the same
throughput and latency, sandbox off, of jobledger with a definition carrying tags, a pool (1,000 slots,
so it never throttles) and notifications (``onStart``, ``onSuccess`` and ``onFailure`` to a signed
webhook on a local HTTP server this process runs, which checks every signature), each run submitted
with a tag of its own, against the same definition without them. Both sides run
``python -m scheduler --timer`` (the dispatcher with its notifier thread) and the receiver. The
throughput side also times until the receiver has every run's two webhooks, and both report the CPU
the scheduler process and redis-server used per run. ``BENCH_FEATURES=pool`` (or ``tags``,
``notifications``, comma-separated) configures only those, to find which costs.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
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
    percentile,
    progress,
    ratio,
    subprocess_env,
)
from _plain_job import run_script
from _redis import RedisServer
from rq import Queue, Worker
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry

from queue_core import Client, Settings
from queue_core.cli.fleet import fleet_command
from scheduler.notify_senders import SIGNATURE_HEADER, verify_signature

RUNS = 500
LATENCY_SAMPLES = 30
WARMUP_JOBS = 2
POLL_SECONDS = 0.2
IDLE_GAP_SECONDS = 0.1
READY_TIMEOUT_SECONDS = 60.0
FINISH_TIMEOUT_SECONDS = 600.0
JOB_NAME = "true"
SCRIPT = "true.sh"
POOL, POOL_SLOTS = "bench", 1000
HOOK_SECRET_NAME, HOOK_SECRET = "bench-hook", "bench-signing-secret"
NOTIFIED_PER_RUN = 2  # onStart and onSuccess


def definition(name: str, location: str) -> dict[str, Any]:
    """A Bodo-style definition of a workspace SHELL job (the shape of tests/support/jobs.py)."""
    return {
        "name": name,
        "config": {
            "source": {"type": "WORKSPACE", "sourceDef": {"path": "jobs"}},
            "type": "SHELL",
            "sourceLocation": location,
            "args": "",
            "retryStrategy": {"numRetries": 0, "delayBetweenRetries": 0.0, "retryOnTimeout": False},
            "timeout": 1.0,
            "envVars": {},
        },
        "cluster": {"name": "default"},
    }


def featured_definition(name: str, location: str, hook_url: str) -> dict[str, Any]:
    """The same definition with tags, a pool that never throttles and a signed webhook on every run event."""
    hook = [{"webhook": hook_url, "secret": {"secret": HOOK_SECRET_NAME}}]
    raw = definition(name, location)
    only = os.environ.get("BENCH_FEATURES", "tags,pool,notifications").split(",")  # to find what costs
    if "tags" in only:
        raw["tags"] = ["team:data", "bench"]
    if "pool" in only:
        raw["config"] |= {"pool": POOL, "poolSlots": 1}
    if "notifications" in only:
        raw["config"]["notifications"] = {"onStart": hook, "onSuccess": hook, "onFailure": hook}
    return raw


class Receiver:
    """A local webhook receiver on a thread: checks each POST's signature, counts the good ones."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        receiver = self
        self.lock = threading.Lock()
        self.verified = self.refused = 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                good = verify_signature(HOOK_SECRET, self.headers.get(SIGNATURE_HEADER, ""), body, time.time())
                with receiver.lock:
                    if good:
                        receiver.verified += 1
                    else:
                        receiver.refused += 1
                self.send_response(200 if good else 400)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True).start()

    def count(self) -> int:
        with self.lock:
            if self.refused:
                raise RuntimeError(f"{self.refused} webhook(s) failed their signature check")
            return self.verified

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(check: Callable[[], bool], what: str, procs: Processes, timeout: float, interval: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        procs.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}\n{procs.log_tails()}")
        time.sleep(interval)


def span_seconds(starts: list[datetime], ends: list[datetime]) -> float:
    return (max(ends) - min(starts)).total_seconds()


def ms(seconds: list[float]) -> dict[str, float]:
    return {"p50_ms": percentile(seconds, 50) * 1000, "p95_ms": percentile(seconds, 95) * 1000}


# -- jobledger ----------------------------------------------------------------------------------


class Jobledger:
    """A fresh redis-server, two fleet workers and one dispatcher; runs go in through ``Client.submit``."""

    def __init__(
        self, work: Path, workspace: Path, sandbox: str, receiver: Receiver | None = None, featured: bool = False
    ) -> None:
        self.name = f"jobledger_sandbox_{sandbox}"
        if receiver is not None:
            self.name = "jobledger_featured" if featured else "jobledger_plain"
        self.sandbox = sandbox
        self.receiver, self.featured = receiver, featured
        self.tags: tuple[str, ...] = ("bench-run",) if featured else ()
        self.server = RedisServer(work / "redis")
        self.procs = Processes(work / "logs")
        self.home = work / "home"
        self.workspace = workspace

    def start(self) -> None:
        url = self.server.start().url
        env = subprocess_env(
            REDIS_URL=url,
            JOBLEDGER_HOME=str(self.home),
            JOBLEDGER_WORKSPACE=str(self.workspace),
            JOBLEDGER_SANDBOX=self.sandbox,
        )
        check_children_import_code_under_test(env, self.procs.log_dir)
        self.client = Client(settings=Settings(redis_url=url, home=self.home, workspace=self.workspace))
        if self.featured and self.receiver is not None:
            self.client.set_secret(HOOK_SECRET_NAME, HOOK_SECRET)
            self.client.create_pool(POOL, POOL_SLOTS)
            self.client.define(featured_definition(JOB_NAME, SCRIPT, self.receiver.url))
        else:
            self.client.define(definition(JOB_NAME, SCRIPT))
        worker = [sys.executable, "-m", "rq.cli", *fleet_command(url, "default")[1:]]
        self.procs.spawn(worker, "jl-worker-0", env)
        self.procs.spawn(worker, "jl-worker-1", env)
        timer = ["--timer"] if self.receiver is not None else []  # the notifier runs beside the timer
        self.procs.spawn([sys.executable, "-m", "scheduler", *timer], "jl-dispatcher", env)
        wait_for(self._ready, "2 jobledger workers and the dispatcher", self.procs, READY_TIMEOUT_SECONDS, 0.05)
        for _ in range(WARMUP_JOBS):
            self.one()

    def _ready(self) -> bool:
        connection = self.server.client()
        if len(Worker.all(connection=connection)) != 2:
            return False
        try:
            return bool(connection.xinfo_consumers("jobledger:log", "dispatchers"))
        except redis.ResponseError:  # no log or no group yet
            return False

    def stop(self) -> None:
        self.procs.stop()
        self.server.stop()

    def _succeeded(self) -> list[dict[str, Any]]:
        return self.client.list_runs(status="SUCCEEDED", limit=None)

    def throughput(self) -> dict[str, float]:
        """RUNS submitted back to back, until list_runs counts them all SUCCEEDED."""
        before = len(self._succeeded())
        notified_before = self.receiver.count() if self.receiver is not None else 0
        cpu_before = self._cpu()
        started = time.perf_counter()
        run_ids = {self.client.submit(JOB_NAME, tags=self.tags) for _ in range(RUNS)}
        submitted = time.perf_counter() - started
        done: list[dict[str, Any]] = []

        def all_done() -> bool:
            done[:] = self._succeeded()
            return len(done) >= before + RUNS and sum(d["id"] in run_ids for d in done) >= RUNS

        wait_for(all_done, f"{RUNS} runs to succeed", self.procs, FINISH_TIMEOUT_SECONDS, POLL_SECONDS)
        elapsed = time.perf_counter() - started
        timed = [d for d in done if d["id"] in run_ids]
        if len(timed) != RUNS:
            raise RuntimeError(f"only {len(timed)} of the {RUNS} runs succeeded")
        span = span_seconds(
            [datetime.fromisoformat(d["submitted_at"]) for d in timed],
            [datetime.fromisoformat(d["finished_at"]) for d in timed],
        )
        figures = {"rate": RUNS / elapsed, "rate_from_timestamps": RUNS / span, "submit_seconds": submitted}
        if self.featured and self.receiver is not None:
            per_run = NOTIFIED_PER_RUN if "notifications" in os.environ.get("BENCH_FEATURES", "notifications") else 0
            receiver, expected = self.receiver, notified_before + per_run * RUNS
            wait_for(lambda: receiver.count() >= expected, "every webhook", self.procs, FINISH_TIMEOUT_SECONDS, 0.05)
            figures["notified_seconds"] = time.perf_counter() - started
        if self.receiver is not None:  # CPU ms per run of the scheduler process and of redis-server
            figures |= {f"cpu_ms_per_run_{k}": (v - cpu_before[k]) * 1000 / RUNS for k, v in self._cpu().items()}
        return figures

    def _cpu(self) -> dict[str, float]:
        assert self.server.process is not None
        return {"scheduler": cpu_seconds(self.procs.procs[-1].pid), "redis": cpu_seconds(self.server.process.pid)}

    def one(self) -> float:
        """Seconds from just before submit until Client.wait returns the run SUCCEEDED."""
        started = time.perf_counter()
        run = self.client.wait(self.client.submit(JOB_NAME, tags=self.tags), timeout=60)
        elapsed = time.perf_counter() - started
        if run["status"] != "SUCCEEDED":
            raise RuntimeError(f"a run ended {run['status']}: {run}")
        return elapsed


# -- plain RQ -----------------------------------------------------------------------------------


class PlainRQ:
    """A fresh redis-server: ``rq worker-pool -n 2`` on db 0 (throughput), one SimpleWorker on db 1 (latency)."""

    name = "plain"

    def __init__(self, work: Path, script: Path) -> None:
        self.server = RedisServer(work / "redis")
        self.procs = Processes(work / "logs")
        self.script = str(script)

    def start(self) -> None:
        self.server.start()
        env, rq = subprocess_env(), [sys.executable, "-m", "rq.cli"]
        pool_url, simple_url = self.server.url, self.server.url[: -len("/0")] + "/1"
        self.pool = Queue("default", connection=redis.Redis.from_url(pool_url))
        self.simple = Queue("default", connection=redis.Redis.from_url(simple_url))
        self.procs.spawn([*rq, "worker-pool", "-n", "2", "-u", pool_url, "default"], "rq-worker-pool", env)
        self.procs.spawn([*rq, "worker", "-u", simple_url, "-w", "rq.worker.SimpleWorker", "default"], "rq-simple", env)
        for queue, count in ((self.pool, 2), (self.simple, 1)):
            wait_for(registered(queue, count), f"{count} rq worker(s)", self.procs, READY_TIMEOUT_SECONDS, 0.05)
            for _ in range(WARMUP_JOBS):
                queue.enqueue(run_script, self.script).latest_result(timeout=60)

    def stop(self) -> None:
        self.procs.stop()
        self.server.stop()

    def throughput(self) -> dict[str, float]:
        """RUNS enqueued back to back on the pool's queue, until its finished registry counts them all."""
        finished, failed = FinishedJobRegistry(queue=self.pool), FailedJobRegistry(queue=self.pool)
        before = finished.count
        started = time.perf_counter()
        jobs = [self.pool.enqueue(run_script, self.script) for _ in range(RUNS)]
        submitted = time.perf_counter() - started

        def all_done() -> bool:
            if failed.count:
                raise RuntimeError(f"a plain RQ job failed\n{self.procs.log_tails()}")
            return finished.count >= before + RUNS

        wait_for(all_done, f"{RUNS} plain RQ jobs to finish", self.procs, FINISH_TIMEOUT_SECONDS, POLL_SECONDS)
        elapsed = time.perf_counter() - started
        fetched = [j for j in Job.fetch_many([j.id for j in jobs], connection=self.pool.connection) if j]
        span = span_seconds([j.enqueued_at for j in fetched], [j.ended_at for j in fetched])
        return {"rate": RUNS / elapsed, "rate_from_timestamps": len(fetched) / span, "submit_seconds": submitted}

    def one(self) -> float:
        """Seconds from just before enqueue until job.latest_result (a blocking XREAD) returns success."""
        started = time.perf_counter()
        result = self.simple.enqueue(run_script, self.script).latest_result(timeout=60)
        elapsed = time.perf_counter() - started
        if result is None or result.type != result.Type.SUCCESSFUL:
            raise RuntimeError(f"a plain RQ job did not succeed: {result}")
        return elapsed


def registered(queue: Queue, count: int) -> Callable[[], bool]:
    return lambda: len(Worker.all(connection=queue.connection)) == count


def latency(system: Jobledger | PlainRQ) -> dict[str, float]:
    samples = []
    for _ in range(LATENCY_SAMPLES):
        time.sleep(IDLE_GAP_SECONDS)
        samples.append(system.one())
    return ms(samples)


def measure(systems: list[Jobledger | PlainRQ]) -> dict[str, dict[str, Any]]:
    """One repeat: each system in turn, throughput then latency, or latency then throughput.

    Only one system is up at a time, and latency phases sit back to back, so a burst of load from
    elsewhere on the machine is less likely to fall on one side only.
    """
    measured: dict[str, dict[str, Any]] = {}
    for index, system in enumerate(systems):
        phases = ("throughput", "latency") if index % 2 == 0 else ("latency", "throughput")
        try:
            system.start()
            figures: dict[str, Any] = {}
            for phase in phases:
                figures |= system.throughput() if phase == "throughput" else latency(system)
                system.procs.check_alive()
            progress(
                f"{system.name}: {figures['rate']:.1f} runs/s (submitting {figures['submit_seconds']:.2f}s), "
                f"latency p50 {figures['p50_ms']:.1f} ms p95 {figures['p95_ms']:.1f} ms"
            )
            measured[system.name] = figures
        finally:
            system.stop()
    return measured


# -- the benchmark ------------------------------------------------------------------------------


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], switches={"--features": "tags, a pool and notifications against none"})
    if args.features:
        main_features(args.repeat)
        return
    started = {"machine": machine(), "code": code_under_test()}
    rounds: list[dict[str, dict[str, Any]]] = []
    with interruptible(), tempfile.TemporaryDirectory(prefix="bench-runs-") as tmp:
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
            rounds.append(measure(systems[k % 3 :] + systems[: k % 3]))
    started["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    emit({"benchmark": "bench_runs", **started, **report(rounds, args.repeat)})


def report(rounds: list[dict[str, dict[str, Any]]], repeat: int) -> dict[str, Any]:
    def values(side: str, key: str) -> list[float]:
        return [r[side][key] for r in rounds]

    on, off = "jobledger_sandbox_on", "jobledger_sandbox_off"
    on_rate, off_rate, plain_rate = values(on, "rate"), values(off, "rate"), values("plain", "rate")
    on_p50, off_p50, plain_p50 = values(on, "p50_ms"), values(off, "p50_ms"), values("plain", "p50_ms")
    fleet = "2 fleet workers (AttemptWorker, JobSerializer) + 1 dispatcher; Client.submit"
    return {
        "placement": "benchmark client, redis-server, the 2 workers (+ dispatcher for jobledger) and their "
        "job children all unpinned on 2 cores; jobledger and plain RQ are never up at the same time",
        "redis": "a private redis-server 7 per system per repeat on loopback TCP: appendonly yes, "
        "appendfsync everysec, noeviction (plain RQ: db 0 for the pool, db 1 for the SimpleWorker)",
        "repeat": repeat,
        "job": f"SHELL job: bash {SCRIPT} (the file holds `true`)",
        "throughput": {
            "unit": f"runs per second, {RUNS} runs, first submit to all succeeded (polled every {POLL_SECONDS}s)",
            on: {"what": f"{fleet}; JOBLEDGER_SANDBOX=on", **figure(on_rate, 1)},
            off: {"what": f"{fleet}; JOBLEDGER_SANDBOX=off", **figure(off_rate, 1)},
            "plain_rq": {
                "what": "rq worker-pool -n 2 (default forking Worker, pickle); Queue.enqueue",
                **figure(plain_rate, 1),
            },
            "ratio_sandbox_on_plain": ratio(on_rate, plain_rate),
            "ratio_sandbox_off_plain": ratio(off_rate, plain_rate),
            "ratio_sandbox_on_off": ratio(on_rate, off_rate),
            "from_timestamps": {
                "what": "runs per second from the records themselves: first submitted_at/enqueued_at "
                "to last finished_at/ended_at (no polling granularity)",
                on: figure(values(on, "rate_from_timestamps"), 1),
                off: figure(values(off, "rate_from_timestamps"), 1),
                "plain_rq": figure(values("plain", "rate_from_timestamps"), 1),
            },
            "submit_seconds": {
                on: figure(values(on, "submit_seconds"), 2),
                off: figure(values(off, "submit_seconds"), 2),
                "plain_rq": figure(values("plain", "submit_seconds"), 2),
            },
            "aim": "ratio_sandbox_on_plain >= 1.0",
        },
        "latency": {
            "unit": f"ms, {LATENCY_SAMPLES} sequential runs on an idle fleet per repeat",
            **{
                side: {
                    "what": f"submit -> Client.wait returns SUCCEEDED (2 workers + dispatcher), sandbox {mode}",
                    "p50_ms": figure(p50, 1),
                    "p95_ms": figure(values(side, "p95_ms"), 1),
                }
                for side, mode, p50 in ((on, "on", on_p50), (off, "off", off_p50))
            },
            "plain_rq": {
                "what": "enqueue -> job.latest_result(timeout) returns (1 SimpleWorker)",
                "p50_ms": figure(plain_p50, 1),
                "p95_ms": figure(values("plain", "p95_ms"), 1),
            },
            "ratio_p50_sandbox_on_plain": ratio(on_p50, plain_p50),
            "ratio_p50_sandbox_off_plain": ratio(off_p50, plain_p50),
            "ratio_p50_sandbox_on_off": ratio(on_p50, off_p50),
            "aim": "ratio_p50_sandbox_on_plain <= 2.0",
        },
    }


def main_features(repeat: int) -> None:
    """Jobledger with tags, a pool and notifications against the same runs without them, same repeat."""
    started = {"machine": machine(), "code": code_under_test()}
    rounds: list[dict[str, dict[str, Any]]] = []
    receiver = Receiver()
    with interruptible(), tempfile.TemporaryDirectory(prefix="bench-runs-features-") as tmp:
        root = Path(tmp)
        workspace = root / "workspace"
        (workspace / "jobs").mkdir(parents=True)
        (workspace / "jobs" / SCRIPT).write_text("true\n")
        try:
            for k in range(repeat):
                progress(f"repeat {k + 1}/{repeat}")
                systems: list[Jobledger | PlainRQ] = [
                    Jobledger(root / f"jl-plain-{k}", workspace, "off", receiver, featured=False),
                    Jobledger(root / f"jl-featured-{k}", workspace, "off", receiver, featured=True),
                ]
                rounds.append(measure(systems[k % 2 :] + systems[: k % 2]))
        finally:
            receiver.close()
    started["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    emit({"benchmark": "bench_runs --features", **started, **report_features(rounds, repeat)})


def report_features(rounds: list[dict[str, dict[str, Any]]], repeat: int) -> dict[str, Any]:
    def values(side: str, key: str) -> list[float]:
        return [r[side][key] for r in rounds]

    featured, plain = "jobledger_featured", "jobledger_plain"
    fleet = "2 fleet workers + python -m scheduler --timer (dispatcher, notifier); JOBLEDGER_SANDBOX=off"
    # Per-run cost is the inverse of the rate: featured cost / plain cost = plain rate / featured rate.
    return {
        "placement": "benchmark client (and its webhook receiver thread), redis-server, the 2 workers, the "
        "scheduler and their job children all unpinned on 2 cores; the two sides are never up at the same time",
        "repeat": repeat,
        "job": f"SHELL job: bash {SCRIPT} (the file holds `true`)",
        "featured": f"tags [team:data, bench] + submit tag; pool {POOL} of {POOL_SLOTS} slots, poolSlots 1; "
        "notifications onStart/onSuccess/onFailure to a signed webhook (HMAC-SHA-256, checked by the receiver)",
        "throughput": {
            "unit": f"runs per second, {RUNS} runs, first submit to all succeeded (polled every {POLL_SECONDS}s)",
            plain: {"what": f"{fleet}; no tags, pool or notifications", **figure(values(plain, "rate"), 1)},
            featured: {"what": f"{fleet}; tags, pool, notifications", **figure(values(featured, "rate"), 1)},
            "per_run_cost_ratio_featured_plain": ratio(values(plain, "rate"), values(featured, "rate")),
            "featured_until_every_webhook_seconds": figure(values(featured, "notified_seconds"), 2),
            "cpu_ms_per_run": {
                "what": "CPU of the scheduler process (dispatcher + notifier threads) and of redis-server, from "
                "the first submit until all succeeded (featured: until every webhook arrived)",
                **{
                    f"{side}_{proc}": figure(values(side, f"cpu_ms_per_run_{proc}"), 2)
                    for side in (plain, featured)
                    for proc in ("scheduler", "redis")
                },
            },
            "aim": "per_run_cost_ratio_featured_plain <= 1.10",
        },
        "latency": {
            "unit": f"ms, {LATENCY_SAMPLES} sequential runs on an idle fleet per repeat",
            plain: {"p50_ms": figure(values(plain, "p50_ms"), 1), "p95_ms": figure(values(plain, "p95_ms"), 1)},
            featured: {
                "p50_ms": figure(values(featured, "p50_ms"), 1),
                "p95_ms": figure(values(featured, "p95_ms"), 1),
            },
            "ratio_p50_featured_plain": ratio(values(featured, "p50_ms"), values(plain, "p50_ms")),
        },
    }


if __name__ == "__main__":
    main()
