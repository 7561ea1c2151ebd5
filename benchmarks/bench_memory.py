"""Redis memory per run: jobledger (2 fleet workers + a dispatcher, sandbox off) against plain RQ, same jobs.

N trivial SHELL runs (``--runs``, default 10,000) go through each system on a fresh redis-server, one system
at a time; Redis's ``used_memory`` is read before the runs and once they have all ended, and the
difference is divided by N. For jobledger the split is reported too: the log, the aggregates' position
lists, the read models, RQ's keys and the rest (``MEMORY USAGE`` of each key). Then jobledger compacts
(``jobledger compact --window 0``: the runs to the cold tier, the log to a folder archive) and the same
figures are read again, with the time to list one definition's runs (hot and cold) and to read the whole
log back through DuckDB from the cold tier's events. Plain RQ runs the same ``bash true.sh`` with its
default TTLs (results kept 500 s), measured the same way.

``--straight N`` (say 1,000,000) measures jobledger alone at a scale no worker fleet reaches in minutes: N
runs written straight into the log through the append script, pipelined (``bench_console``'s realistic run
stories), folded with ``replay --rebuild``, then compacted and trimmed with a window of zero; it reports the
memory per run before and after, how long compaction took, the time to list a page of one definition's
runs and to read one run (both tiers), and the events read per second from the cold tier through DuckDB.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import bench_runs
from _harness import code_under_test, emit, figure, interruptible, machine, progress, ratio
from _redis import RedisServer
from bench_console import FILTERED, load_runs
from bench_runs import Jobledger, PlainRQ

from queue_core.eventlog.archive import ArchiveLocation
from queue_core.eventlog.runlog import RunLog
from queue_core.eventlog.store import EventStore
from queue_core.keys import Keys
from queue_core.readmodels.materialized import LIVE, ReadModels, rebuild_live
from queue_core.services.compaction import archive_location, compact_runs, trim_to_window
from queue_core.services.runs import RunService

DEFAULT_RUNS = 10_000
SEGMENT_SIZE = 500  # archive segments small enough that the log of a small N leaves Redis too


def _used(system: Jobledger | PlainRQ) -> int:
    info: Any = system.server.client().info("memory")
    return int(info["used_memory"])


def _split(system: Jobledger) -> dict[str, int]:
    """Bytes by kind of key (``MEMORY USAGE``, samples 0: every element counted)."""
    connection, keys = system.server.client(), Keys()
    kinds = {"log": 0, "aggregate positions": 0, "read models": 0, "rq": 0, "other": 0}
    for key in connection.scan_iter(count=1000):
        name = key.decode()
        size = int(connection.memory_usage(key, samples=0) or 0)
        if name == keys.log:
            kinds["log"] += size
        elif name.startswith(keys.aggregate("")):
            kinds["aggregate positions"] += size
        elif name.startswith(keys.namespace_prefix(LIVE)):
            kinds["read models"] += size
        elif name.startswith("rq:"):
            kinds["rq"] += size
        else:
            kinds["other"] += size
    return kinds


def _compacted(system: Jobledger, before: int, runs: int) -> dict[str, Any]:
    """Compact everything ended, then the memory per run again, and reads across the tiers."""
    client = system.client
    started = time.perf_counter()
    done = compact_runs(client.store, client.read_models, client.run_log, system.home / "cold", timedelta(0))
    location = archive_location(client.store, client.settings)
    trimmed = trim_to_window(client.store, client.read_models, location, timedelta(0), None, SEGMENT_SIZE)
    seconds = time.perf_counter() - started
    progress(f"compacted {done.runs} runs, trimmed {trimmed} log entries in {seconds:.1f} s")
    started = time.perf_counter()
    listed = client.list_runs(definition=bench_runs.JOB_NAME, limit=None)
    listing = time.perf_counter() - started
    day = int(time.time() * 1000)
    client.store.cold.events_between(day - 86_400_000, day)  # DuckDB imported and the files' footers read once
    started = time.perf_counter()
    events = len(client.store.cold.events_between(day - 86_400_000, day))  # the events of the last day
    cold_read = time.perf_counter() - started
    return {
        "bytes_per_run_after_compaction": (_used(system) - before) / runs,
        "split_bytes_per_run_after_compaction": {k: round(v / runs) for k, v in _split(system).items()},
        "compaction_seconds": seconds,
        "list_definition_runs_seconds": listing,
        "listed_runs": len(listed),
        "cold_events_read_per_second": events / cold_read if cold_read else None,
    }


def measure(system: Jobledger | PlainRQ, runs: int) -> dict[str, Any]:
    try:
        system.start()
        before = _used(system)
        bench_runs.RUNS = runs  # the run count bench_runs' throughput phase submits
        system.throughput()
        after = _used(system)
        figures: dict[str, Any] = {"bytes_per_run": (after - before) / runs}
        if isinstance(system, Jobledger):
            figures["split_bytes_per_run"] = {k: round(v / runs) for k, v in _split(system).items()}
            figures.update(_compacted(system, before, runs))
        progress(f"{system.name}: {figures['bytes_per_run']:.0f} bytes per run")
        return figures
    finally:
        system.stop()


def straight(root: Path, runs: int) -> dict[str, Any]:
    """``runs`` runs written straight into a fresh store's log, compacted: memory per run and reads."""
    server = RedisServer(root / "straight").start()
    try:
        store = EventStore(server.client(), Keys())
        used = lambda: int(store.redis.info("memory")["used_memory"])  # noqa: E731
        before = used()
        progress(f"writing {runs:,} runs into the log")
        written = load_runs(store, runs)
        rebuild_live(store)
        hot = used() - before
        progress(f"hot: {hot / runs:.0f} bytes per run; compacting")
        models, started = ReadModels(store), time.perf_counter()
        done = compact_runs(store, models, RunLog(store.redis), root / "cold", timedelta(0))
        location = ArchiveLocation("", "", None, str(root / "archive"))
        trimmed = trim_to_window(store, models, location, timedelta(0), None)
        seconds = time.perf_counter() - started
        cold = used() - before
        progress(
            f"compacted {done.runs:,} runs, trimmed {trimmed:,} entries in {seconds:.0f} s: {cold / runs:.0f} B/run"
        )
        service = RunService(store, models, RunLog(store.redis))
        service.list_runs(definition=FILTERED, limit=50)  # DuckDB opened, the files' footers read
        started = time.perf_counter()
        page = service.list_runs(definition=FILTERED, limit=50)
        listing = time.perf_counter() - started
        started = time.perf_counter()
        service.get(page[-1]["id"])
        one = time.perf_counter() - started
        now = int(time.time() * 1000)
        started = time.perf_counter()
        events = len(store.cold.events_between(0, now))
        reading = time.perf_counter() - started
        return {
            **written,
            "bytes_per_run_hot": round(hot / runs),
            "bytes_per_run_after_compaction": round(cold / runs),
            "used_memory_after_compaction_mb": round(used() / 2**20, 1),
            "compaction_seconds": round(seconds, 1),
            "list_one_definition_page_ms": round(listing * 1000, 1),
            "one_cold_run_ms": round(one * 1000, 1),
            "cold_events_read": events,
            "cold_events_read_per_second": round(events / reading),
        }
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS)
    parser.add_argument("--straight", type=int, metavar="RUNS", help="jobledger alone, runs written into the log")
    args = parser.parse_args()
    if args.straight:
        with interruptible(), tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
            emit({"machine": machine(), "code": code_under_test(), "straight": straight(Path(tmp), args.straight)})
        return
    result: dict[str, Any] = {"machine": machine(), "code": code_under_test(), "runs": args.runs}
    rounds = []
    with interruptible(), tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        root = Path(tmp)
        workspace = root / "workspace"
        (workspace / "jobs").mkdir(parents=True)
        script = workspace / "jobs" / bench_runs.SCRIPT
        script.write_text("true\n")
        for k in range(args.repeat):
            progress(f"repeat {k + 1}/{args.repeat}")
            rounds.append(
                {
                    "jobledger": measure(Jobledger(root / f"jl-{k}", workspace, "off"), args.runs),
                    "plain_rq": measure(PlainRQ(root / f"plain-{k}", script), args.runs),
                }
            )
    jl = [r["jobledger"]["bytes_per_run"] for r in rounds]
    plain = [r["plain_rq"]["bytes_per_run"] for r in rounds]
    result["jobledger_bytes_per_run"] = figure(jl, 0)
    result["plain_rq_bytes_per_job"] = figure(plain, 0)
    result["ratio_jobledger_to_plain_rq"] = ratio(jl, plain)
    result["jobledger_split_last_repeat"] = rounds[-1]["jobledger"]["split_bytes_per_run"]
    compacted = [r["jobledger"]["bytes_per_run_after_compaction"] for r in rounds]
    result["jobledger_bytes_per_run_after_compaction"] = figure(compacted, 0)
    result["ratio_compacted_to_plain_rq"] = ratio(compacted, plain)
    result["cold_events_read_per_second"] = figure([r["jobledger"]["cold_events_read_per_second"] for r in rounds], 0)
    result["rounds"] = rounds
    emit(result)


if __name__ == "__main__":
    main()
