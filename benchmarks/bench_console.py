"""The console's pages with 200,000 runs against the same pages with 200: does a page stay as fast? And with
``--live``, what a live page costs in CPU, the console's and the browser's, while 50 runs end every second.

Two private redis-servers: one whose log holds 200 runs, one whose log holds 200,000 (``--runs``), both
written straight into the log through the store's own append script, pipelined (the realistic run
stories of ``bench_store``: 84% succeed, 10% on a retry, 5% fail, 1% cancelled), then folded into the
read models with ``replay --rebuild``; with ``--compact``, every ended run of the large log is then moved to
the cold tier (``jobledger compact --window 0``), so its pages read mostly cold runs through DuckDB. A
``jobledger console`` process serves each; every figure is the
median latency of 20 sequential GETs of one page, the two consoles measured back to back in each repeat.
30% of the runs are of one definition, so its filtered pages are full with 200 runs too; the FAILED page
is not (5% of 200 runs): ``rows_shown`` says how many runs each page listed. The overview and a definition's
history page are measured the same way.

``--live``: against the small log, Debian's headless chromium (Playwright, ``JOBLEDGER_CHROMIUM`` or PATH) holds
the runs page and the overview open while this process appends 50 whole run stories a second; the console's CPU
(the process and its children, from /proc through psutil) and the browser's (the renderer's main-thread task
time, Chrome DevTools' ``Performance.getMetrics``) over ``LIVE_SECONDS``, as a share of one core.
"""

from __future__ import annotations

import os
import random
import re
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from _harness import (
    Processes,
    code_under_test,
    emit,
    figure,
    interruptible,
    machine,
    progress,
    ratio,
    subprocess_env,
)
from _redis import RedisServer
from bench_store import definition_events, run_story

from queue_core.eventlog.events import DefinitionCreated, NewEvent, encode
from queue_core.eventlog.runlog import RunLog
from queue_core.eventlog.store import EventStore
from queue_core.keys import Keys
from queue_core.readmodels.materialized import ReadModels, rebuild_live
from queue_core.services.compaction import compact_runs
from queue_core.timefmt import utc_now

SMALL_RUNS = 200
LARGE_RUNS = 200_000
DEFINITIONS = 50
REQUESTS = 20
PIPELINE = 1000
SEED = 20261121
FILTERED = "nightly-export-7"  # the definition the filtered pages show
FILTERED_SHARE = 0.3  # of the runs: so with 200 runs too its pages are full (50 rows)


def load_runs(store: EventStore, runs: int) -> dict[str, Any]:
    """Definitions, then ``runs`` runs one after another, through the append script, pipelined."""
    rng = random.Random(SEED)
    pipe = store.redis.pipeline(transaction=False)
    definitions, calls, now = [], 0, utc_now()

    def send(new: NewEvent, version: int) -> None:
        nonlocal calls, now
        keys = [store.keys.log, store.keys.epoch, store.keys.aggregate(new.aggregate)]  # the layout append() uses
        store._append(
            keys=keys, args=[store.epoch, 1, version - 1, 1, new.event_id, encode(new, version, now)], client=pipe
        )
        calls += 1
        if calls % PIPELINE == 0:
            if any(reply[0] != b"OK" for reply in pipe.execute()):
                raise RuntimeError("generating the log: an append was refused")
            now = utc_now()

    for new, version in definition_events(DEFINITIONS):
        if isinstance(new.event, DefinitionCreated):
            definitions.append((new.aggregate, dict(new.event.spec)))
        send(new, version)
    filtered = next(d for d in definitions if d[1]["name"] == FILTERED)
    for _ in range(runs):
        run_id = str(uuid.uuid4())
        chosen = filtered if rng.random() < FILTERED_SHARE else rng.choice(definitions)
        for version, event in enumerate(run_story(rng, chosen), start=1):
            send(NewEvent(run_id, event), version)
    pipe.execute()
    return {"runs": runs, "events": store.length()}


def start_console(procs: Processes, url: str, name: str) -> str:
    env = subprocess_env(REDIS_URL=url, JOBLEDGER_HOME=str(procs.log_dir / f"home-{name}"))
    env.pop("JOBLEDGER_CONSOLE_TOKEN", None)
    procs.spawn([sys.executable, "-m", "queue_core", "console", "--port", "0"], name, env)
    log = procs.log_dir / f"{name}.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = re.search(r"http://[0-9.]+:\d+", log.read_text() if log.exists() else "")
        if found:
            return found.group(0)
        procs.check_alive()
        time.sleep(0.05)
    raise RuntimeError(f"console {name} did not start\n{procs.log_tails()}")


def rows(base: str, path: str) -> int:
    """How many runs a page lists."""
    with urllib.request.urlopen(base + path, timeout=60) as response:
        return response.read().decode().count('data-run="')


def latency_ms(base: str, path: str) -> float:
    """Median of REQUESTS sequential GETs of one page, in milliseconds."""
    samples = []
    for _ in range(REQUESTS):
        started = time.perf_counter()
        with urllib.request.urlopen(base + path, timeout=60) as response:
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{path}: HTTP {response.status}")
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def pages(store: EventStore, definition: str) -> dict[str, str]:
    """The pages measured: the newest, filtered ones, the last one (cursor near the oldest) and a run."""
    models_key = store.keys.index("live", "runs", "all")
    oldest: Any = store.redis.zrange(models_key, 0, 5, withscores=True)
    newest: Any = store.redis.zrevrange(models_key, 0, 0)
    return {
        "newest page": "/runs",
        "status FAILED": "/runs?status=FAILED",
        "one definition": f"/runs?definition={definition}",
        "status + definition": f"/runs?status=SUCCEEDED&definition={definition}",
        "last page": f"/runs?before={oldest[-1][1]!r}",
        "a run": f"/runs/{newest[0].decode()}",
        "overview": "/",
        "definition history": f"/definitions/{definition}",
    }


LIVE_SECONDS = 20.0
LIVE_RATE = 50  # runs ending per second


def measure_live(store: EventStore, base: str, console_pid: int) -> dict[str, Any]:
    """CPU of the console and of the browser while two live pages are open and 50 runs end a second."""
    import shutil
    import threading

    from _live_load import CpuMeter, end_runs
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("JOBLEDGER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    definitions = [(d["id"], dict(d["versions"][-1]["spec"])) for d in _definitions(store)]
    with sync_playwright() as driver:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        browser = driver.chromium.launch(executable_path=chromium, headless=True, args=args)
        pages, sessions = [], []
        for path in ("/runs", "/"):
            page = browser.new_page()
            page.goto(base + path)
            session = page.context.new_cdp_session(page)
            session.send("Performance.enable")
            pages.append(page)
            sessions.append(session)
        time.sleep(2)  # the pages settle and their event streams open

        def task_seconds() -> float:
            total = 0.0
            for session in sessions:
                metrics = session.send("Performance.getMetrics")["metrics"]
                total += next(m["value"] for m in metrics if m["name"] == "TaskDuration")
            return total

        stop = threading.Event()
        ended: list[int] = []
        loader = threading.Thread(target=lambda: ended.append(end_runs(store, definitions, LIVE_RATE, stop)))
        meter = CpuMeter(console_pid)
        loader.start()
        time.sleep(2)  # the load is steady before measuring
        meter.start()
        browser_before, wall = task_seconds(), time.monotonic()
        time.sleep(LIVE_SECONDS)
        console_share = meter.stop()
        browser_share = (task_seconds() - browser_before) / (time.monotonic() - wall)
        stop.set()
        loader.join()
        runs_rows = pages[0].locator("#runs tbody tr").count()
        browser.close()
    return {
        "pages_open": ["/runs", "/"],
        "runs_ending_per_second": LIVE_RATE,
        "runs_ended": ended[0],
        "seconds_measured": LIVE_SECONDS,
        "console_cpu_share_of_one_core": round(console_share, 3),
        "browser_main_thread_share_of_one_core": round(browser_share, 3),
        "runs_page_rows_at_end": runs_rows,
        "aim": "under 0.10 of one core each",
    }


def _definitions(store: EventStore) -> list[dict[str, Any]]:
    models = ReadModels(store)
    models.catch_up()
    return [d for d in models.all("definitions").values() if not d["deleted"]]


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of every figure (default 3)")
    parser.add_argument("--runs", type=int, default=LARGE_RUNS, help=f"runs in the large log (default {LARGE_RUNS:,})")
    parser.add_argument("--compact", action="store_true", help="move the large log's ended runs to the cold tier")
    parser.add_argument("--live", action="store_true", help="also measure live pages' CPU with 50 runs ending a second")
    args = parser.parse_args()
    result: dict[str, Any] = {
        "benchmark": "bench_console",
        "machine": machine(),
        "code": code_under_test(),
        "placement": "this process (the HTTP client), two consoles and two redis-servers, unpinned",
        "requests_per_figure": REQUESTS,
        "repeat": args.repeat,
    }
    with interruptible(), tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        servers = {size: RedisServer(Path(tmp) / f"redis-{size}").start() for size in ("small", "large")}
        procs = Processes(Path(tmp) / "logs")
        try:
            stores = {size: EventStore(server.client(), Keys()) for size, server in servers.items()}
            sizes = {"small": SMALL_RUNS, "large": args.runs}
            for size, store in stores.items():
                progress(f"writing {sizes[size]:,} runs into the {size} log")
                result[f"{size}_log"] = load_runs(store, sizes[size])
                started = time.perf_counter()
                rebuild_live(store)
                result[f"{size}_log"]["replay_rebuild_seconds"] = round(time.perf_counter() - started, 2)
                progress(f"{size}: {result[f'{size}_log']}")
            paths = {size: pages(stores[size], FILTERED) for size in stores}  # cursors read while all are hot
            if args.compact:
                started = time.perf_counter()
                models = ReadModels(stores["large"])
                done = compact_runs(
                    stores["large"], models, RunLog(stores["large"].redis), Path(tmp) / "cold", timedelta(0)
                )
                result["large_log"]["compacted_runs"] = done.runs
                result["large_log"]["compact_seconds"] = round(time.perf_counter() - started, 2)
                progress(f"compacted {done.runs:,} runs of the large log")
            bases = {size: start_console(procs, server.url, size) for size, server in servers.items()}
            consoles = dict(zip(bases, procs.procs, strict=True))  # spawned in the same order
            measured: dict[str, dict[str, list[float]]] = {p: {"small": [], "large": []} for p in paths["small"]}
            for size, base in bases.items():  # a first request of each page warms both consoles
                for path in paths[size].values():
                    latency_ms(base, path)
            for k in range(args.repeat):
                order = ["small", "large"] if k % 2 == 0 else ["large", "small"]
                for page in measured:
                    for size in order:
                        measured[page][size].append(latency_ms(bases[size], paths[size][page]))
                    progress(f"repeat {k + 1} {page}: {measured[page]['small'][-1]:.1f} ms with {SMALL_RUNS} runs, "
                             f"{measured[page]['large'][-1]:.1f} ms with {args.runs:,}")  # fmt: skip
            result["pages_ms"] = {
                page: {
                    "path_large": paths["large"][page],
                    "rows_shown": {size: rows(bases[size], paths[size][page]) for size in ("large", "small")},
                    f"with_{args.runs}_runs": figure(values["large"], 2),
                    f"with_{SMALL_RUNS}_runs": figure(values["small"], 2),
                    "ratio_large_small": ratio(values["large"], values["small"]),
                }
                for page, values in measured.items()
            }
            result["aim"] = "ratio_large_small <= 2 for every page (the same order of time)"
            if args.live:
                progress(f"live pages: {LIVE_RATE} runs ending a second for {LIVE_SECONDS:.0f} s")
                result["live"] = measure_live(stores["small"], bases["small"], consoles["small"].pid)
        finally:
            procs.stop()
            for server in servers.values():
                server.stop()
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    emit(result)


if __name__ == "__main__":
    main()
