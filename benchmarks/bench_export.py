"""Export and import throughput of a 200,000-event log, each against a bare Redis peer on the same lines.

Export: ``transfer.write_export`` over ``archive.history`` (what ``jobledger export FILE`` does: read the
log, SHA-256 the event lines, gzip them, header and trailer) against a bare XRANGE 1,000 at a time that
writes the same JSON lines through ``gzip`` at the same level. Import: ``transfer.import_export`` (what
``jobledger import FILE`` does before rebuilding the read models: read, check the chain and the checksum,
XADD at the original positions into the log and each aggregate's stream, pipelined) against a bare
read of the same file that does the same pipelined XADDs and checks nothing. MB/s are of the
uncompressed event lines.
"""

from __future__ import annotations

import gzip
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import redis
from _harness import code_under_test, emit, figure, interruptible, machine, parse_args, progress, ratio
from _redis import RedisServer
from bench_store import realistic_log

from queue_core.eventlog.archive import history
from queue_core.eventlog.events import encode
from queue_core.eventlog.store import READ_BATCH, EventStore
from queue_core.eventlog.transfer import GZIP_LEVEL, LOAD_BATCH, encode_entry, import_export, write_export
from queue_core.keys import Keys
from queue_core.timefmt import utc_now

EVENTS = 200_000
MB = 1_000_000


def load_log(store: EventStore, total: int) -> None:
    """Append the realistic log through the store's own script, pipelined 1,000 calls a round trip."""
    pipe = store.redis.pipeline(transaction=False)
    now = utc_now()
    for count, (new, version) in enumerate(realistic_log(total), start=1):
        keys = [store.keys.log, store.keys.epoch, store.keys.aggregate(new.aggregate)]
        store._append(
            keys=keys, args=[store.epoch, 1, version - 1, 1, new.event_id, encode(new, version, now)], client=pipe
        )
        if count % 1000 == 0:
            pipe.execute()
            now = utc_now()
    pipe.execute()


def bare_export(connection: redis.Redis, log_key: str, path: Path) -> None:
    with gzip.open(path, "wb", compresslevel=GZIP_LEVEL) as out:
        start = "-"
        while True:
            entries: Any = connection.xrange(log_key, min=start, max="+", count=READ_BATCH)
            out.write(b"".join(encode_entry(p.decode(), f[b"e"], f[b"h"].decode()) for p, f in entries))
            if len(entries) < READ_BATCH:
                return
            start = "(" + entries[-1][0].decode()


def bare_import(connection: redis.Redis, keys: Keys, path: Path) -> None:
    pipe = connection.pipeline(transaction=False)
    with gzip.open(path, "rb") as lines:
        for count, line in enumerate(lines, start=1):
            item = orjson.loads(line)
            envelope = item["e"].encode()
            aggregate = orjson.loads(envelope)["agg"]
            pipe.xadd(keys.log, {"e": envelope, "h": item["h"]}, id=item["position"])
            pipe.rpush(keys.aggregate(aggregate), item["position"])
            if count % LOAD_BATCH == 0:
                pipe.execute()
    pipe.execute()


def timed(run: Any) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def one_round(store: EventStore, target: EventStore, tmp: Path, megabytes: float, flip: bool) -> dict[str, float]:
    figures: dict[str, float] = {}
    ours, bare = tmp / "ours.jsonl.gz", tmp / "bare.jsonl.gz"
    for side in ["bare", "jobledger"] if flip else ["jobledger", "bare"]:
        if side == "jobledger":
            figures["export"] = megabytes / timed(lambda: write_export(ours, history(store), chain_start=""))
            target.redis.flushdb()
            figures["import"] = megabytes / timed(lambda: import_export(target, ours))
        else:
            figures["bare_export"] = megabytes / timed(lambda: bare_export(store.redis, store.keys.log, bare))
            target.redis.flushdb()
            figures["bare_import"] = megabytes / timed(lambda: bare_import(target.redis, target.keys, bare))
    progress(", ".join(f"{k} {v:.1f} MB/s" for k, v in figures.items()))
    return figures


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    result: dict[str, Any] = {
        "benchmark": "bench_export",
        "machine": machine(),
        "code": code_under_test(),
        "placement": "client (this process) and one redis-server (export from db 0, import into db 1), unpinned",
        "repeat": args.repeat,
        "events": EVENTS,
    }
    with interruptible(), tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        server = RedisServer(Path(tmp) / "redis").start()
        try:
            store = EventStore(server.client(), Keys())
            target = EventStore(redis.Redis(host="127.0.0.1", port=server.port, db=1), Keys())
            progress(f"generating a log of {EVENTS:,} events")
            load_log(store, EVENTS)
            megabytes = sum(len(encode_entry(*entry)) for entry in store.read_chain()) / MB
            result["event_lines_mb"] = round(megabytes, 1)
            rounds = [one_round(store, target, Path(tmp), megabytes, flip=k % 2 == 1) for k in range(args.repeat)]
            result["file_mb"] = round(os.path.getsize(Path(tmp) / "ours.jsonl.gz") / MB, 1)
        finally:
            server.stop()
    result["unit"] = "MB of uncompressed event lines per second"
    for name, peer in (("export", "bare_export"), ("import", "bare_import")):
        ours = [r[name] for r in rounds]
        theirs = [r[peer] for r in rounds]
        result[name] = {"jobledger": figure(ours), "bare": figure(theirs), "ratio_jobledger_bare": ratio(ours, theirs)}
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    emit(result)


if __name__ == "__main__":
    main()
