"""Verify of a sealed 200,000-event log: the chain walk with every seal checked, against the bare chain walk.

jobledger: ``archive.verify_log`` with a ``seals.SealCheck`` and the ledger's public key (what ``jobledger
verify`` does where the public key is known): the SHA-1 chain, each entry's type, and for each seal the
head at its position and its Ed25519 signature. Peer: the same ``verify_log`` without the check (the
unkeyed walk ``jobledger verify`` did before seals). The log is the realistic one of ``bench_store.py``,
with a seal every 1,000 entries (what the scheduler appends every 2 seconds at 500 events/s).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog
from _harness import code_under_test, emit, figure, interruptible, machine, parse_args, progress, ratio
from _redis import RedisServer
from bench_store import realistic_log

from queue_core.eventlog.archive import verify_log
from queue_core.eventlog.events import encode
from queue_core.eventlog.seals import SealCheck, load_signer
from queue_core.eventlog.store import EventStore
from queue_core.keys import Keys
from queue_core.settings import Settings
from queue_core.timefmt import utc_now
from scheduler.sealing import Sealer

EVENTS = 200_000
SEAL_EVERY = 1000


def load_sealed_log(store: EventStore, sealer: Sealer, total: int) -> None:
    """Append the realistic log through the store's own script, pipelined, with a seal after every batch."""
    pipe = store.redis.pipeline(transaction=False)
    now = utc_now()
    for count, (new, version) in enumerate(realistic_log(total), start=1):
        keys = [store.keys.log, store.keys.epoch, store.keys.aggregate(new.aggregate)]
        store._append(
            keys=keys, args=[store.epoch, 1, version - 1, 1, new.event_id, encode(new, version, now)], client=pipe
        )
        if count % SEAL_EVERY == 0:
            pipe.execute()
            sealer.seal()
            now = utc_now()
    pipe.execute()


def one_round(store: EventStore, sealer: Sealer, flip: bool) -> dict[str, float]:
    figures: dict[str, float] = {}
    for side in ["bare", "jobledger"] if flip else ["jobledger", "bare"]:
        check = SealCheck(sealer.signer.verifier) if side == "jobledger" else None
        started = time.perf_counter()
        report, _ = verify_log(store, check=check)
        seconds = time.perf_counter() - started
        assert report.intact and (check is None or check.sealed_through is not None)
        figures[side] = report.checked / seconds
    progress(", ".join(f"{k} {v:,.0f} entries/s" for k, v in figures.items()))
    return figures


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout holds the JSON alone
    result: dict[str, Any] = {
        "benchmark": "bench_verify",
        "machine": machine(),
        "code": code_under_test(),
        "placement": "client (this process) and one redis-server, unpinned",
        "repeat": args.repeat,
        "events": EVENTS,
        "seal_every": SEAL_EVERY,
    }
    with interruptible(), tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        server = RedisServer(Path(tmp) / "redis").start()
        try:
            store = EventStore(server.client(), Keys())
            signer = load_signer(Settings(None, Path(tmp) / "home", Path(tmp)), create=True)
            assert signer is not None
            sealer = Sealer(store, signer)
            progress(f"generating a log of {EVENTS:,} events, sealed every {SEAL_EVERY:,}")
            load_sealed_log(store, sealer, EVENTS)
            rounds = [one_round(store, sealer, flip=k % 2 == 1) for k in range(args.repeat)]
        finally:
            server.stop()
    result["unit"] = "log entries walked per second"
    ours, theirs = [r["jobledger"] for r in rounds], [r["bare"] for r in rounds]
    result["verify"] = {"jobledger": figure(ours), "bare": figure(theirs), "ratio_jobledger_bare": ratio(ours, theirs)}
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    emit(result)


if __name__ == "__main__":
    main()
