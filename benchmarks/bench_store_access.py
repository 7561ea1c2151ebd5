"""What least privilege costs: appends as the client role's ACL user, and the embedded store's ownership check.

- ``acl_appends``: ``EventStore.append`` of single events (a new aggregate each) as the ``client`` role's user
  (``jobledger acl``'s rules: key patterns, an allowlist of commands) against the peer, the same appends on the
  same server as a user allowed everything (``~* &* +@all``); the two alternate within each repeat.
- ``embedded_check``: ``EmbeddedRedis.ensure_running()`` on a running embedded store, what every process does
  first (the socket's owner, the server's peer credentials, its ``dir`` through CONFIG GET, a PING), against the
  peer, what it did before the check: a PING on a fresh connection to the socket.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from _harness import code_under_test, emit, figure, interruptible, machine, parse_args, progress, ratio
from _redis import RedisServer

from queue_core.eventlog.acl import ROLES
from queue_core.eventlog.embedded import EmbeddedRedis
from queue_core.eventlog.events import NewEvent, RunQueued
from queue_core.eventlog.store import EventStore

APPENDS = 2_000
CHECKS = 300
PASSWORD = "bench-store-access"


def timed(count: int, work: Callable[[], None]) -> float:
    """Seconds per operation of ``work`` (which does ``count`` of them)."""
    start = time.perf_counter()
    work()
    return (time.perf_counter() - start) / count


def appends(connection: redis.Redis) -> float:
    """Appends per second of single new-aggregate events through ``EventStore.append``."""
    store = EventStore(connection)
    batches = [[NewEvent(str(uuid.uuid4()), RunQueued(attempt=1, job_id="j"))] for _ in range(APPENDS)]

    def run() -> None:
        for batch in batches:
            store.append(batch, {batch[0].aggregate: 0})

    return 1 / timed(APPENDS, run)


def acl_round(server: RedisServer, flip: bool) -> tuple[float, float]:
    """(appends/s as the client role, appends/s as an unrestricted user), measured back to back."""
    sides = {
        "client": redis.Redis(port=server.port, username="client", password=PASSWORD),
        "unrestricted": redis.Redis(port=server.port, username="everything", password=PASSWORD),
    }
    rates = {}
    for side in ["unrestricted", "client"] if flip else ["client", "unrestricted"]:
        server.client().flushall()
        rates[side] = appends(sides[side])
        progress(f"appends as {side}: {rates[side]:,.0f}/s")
    return rates["client"], rates["unrestricted"]


def check_round(home: Path, flip: bool) -> tuple[float, float]:
    """(µs per ownership-checked ensure_running, µs per fresh-connection PING), measured back to back."""
    embedded = EmbeddedRedis(home)

    def checked() -> None:
        for _ in range(CHECKS):
            EmbeddedRedis(home).ensure_running()

    def bare() -> None:
        for _ in range(CHECKS):
            redis.Redis(unix_socket_path=str(embedded.socket)).ping()

    micros = {}
    for side, work in [("bare", bare), ("checked", checked)] if flip else [("checked", checked), ("bare", bare)]:
        micros[side] = timed(CHECKS, work) * 1e6
        progress(f"{side}: {micros[side]:,.0f} µs per call")
    return micros["checked"], micros["bare"]


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    result: dict[str, Any] = {
        "benchmark": "bench_store_access",
        "machine": machine(),
        "code": code_under_test(),
        "placement": "client (this process) and the redis-server, both unpinned on the machine's cores",
        "repeat": args.repeat,
    }
    with interruptible(), tempfile.TemporaryDirectory(prefix="bench-access-") as tmp:
        server = RedisServer(Path(tmp) / "redis").start()
        embedded = EmbeddedRedis(Path(tmp) / "home")
        try:
            admin = server.client()
            admin.execute_command("ACL", "SETUSER", "everything", "on", f">{PASSWORD}", "~*", "&*", "+@all")
            known = [c for c in ROLES["client"].rules() if c != "+client|setinfo"]  # 7.2+ only
            admin.execute_command("ACL", "SETUSER", "client", "reset", "on", f">{PASSWORD}", *known)
            acl = [acl_round(server, flip=k % 2 == 1) for k in range(args.repeat)]
            embedded.ensure_running()
            checks = [check_round(embedded.home, flip=k % 2 == 1) for k in range(args.repeat)]
        finally:
            server.stop()
            embedded.stop()
    result["acl_appends"] = {
        "unit": "events appended per second (1 event per EventStore.append, a new aggregate each)",
        "events_per_figure": APPENDS,
        "client_role": figure([c for c, _ in acl], 0),
        "unrestricted_user": figure([u for _, u in acl], 0),
        "ratio_client_unrestricted": ratio([c for c, _ in acl], [u for _, u in acl]),
        "aim": "ratio >= 0.95: ACL checks cost nothing measurable",
    }
    result["embedded_check"] = {
        "unit": "microseconds per call",
        "calls_per_figure": CHECKS,
        "checked_ensure_running": figure([c for c, _ in checks], 0),
        "bare_ping_on_a_fresh_connection": figure([b for _, b in checks], 0),
        "ratio_checked_bare": ratio([c for c, _ in checks], [b for _, b in checks]),
        "aim": "under a millisecond per process start",
    }
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    emit(result)


if __name__ == "__main__":
    main()
