"""The runs page costs the same Redis work with 200 runs as with 10,000: a page is a few reads by index score.

Timing pages would be a timed assertion; counting the commands Redis served for them is not, and it is
what keeps a page fast as the log grows (``benchmarks/bench_console.py`` has the times, at 200,000 runs).
"""

from __future__ import annotations

import re

import redis

from queue_core import Client
from tests.support.biglog import append_runs
from tests.support.console_http import request
from tests.support.processes import Procs
from tests.support.servers import start_server

SMALL, LARGE = 200, 10_000
# Commands whose cost grows with what they read: a page must not issue them on the runs' keys.
WHOLE_READS = {"hgetall", "zrange", "smembers", "keys", "scan"}


def _commands(connection: redis.Redis, base: str, path: str) -> dict[str, int]:
    """Which Redis commands, and how many of each, serving ``path`` took (INFO commandstats around it)."""
    connection.config_resetstat()
    reply = request(base, path)
    assert reply.status == 200, reply.body
    stats = connection.info("commandstats")
    counts = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
    return {name: calls for name, calls in counts.items() if calls}


def _pages(client: Client, base: str) -> dict[str, dict[str, int]]:
    request(base, "/runs")  # the first request folds the new log into the read models
    oldest = client.read_models.window("runs", "all", 6, newer_than=0)  # the 6 oldest, newest first
    last_page = f"/runs?before={oldest[0][1]!r}"  # the last page: the 5 older than the sixth oldest
    assert len(re.findall(r'data-run="', request(base, last_page).body)) == 5
    return {
        path: _commands(client.redis, base, path)
        for path in ("/runs", "/runs?status=FAILED", "/runs?definition=hourly", last_page)
    }


def test_a_runs_page_takes_the_same_redis_commands_with_50_times_the_runs(
    client: Client, procs: Procs, connection: redis.Redis
):
    _, base = start_server(procs, "console", name="console")
    append_runs(client.store, SMALL)
    small = _pages(client, base)
    connection.flushall()
    append_runs(client.store, LARGE)
    assert f"of {LARGE:,}" in request(base, "/runs").body
    large = _pages(client, base)
    assert list(small.values()) == list(large.values())
    for counts in large.values():
        assert not WHOLE_READS & {name.lower() for name in counts if name != "hgetall"}
        assert counts.get("hgetall", 0) <= 1  # the definitions for the filter's list, not the runs
        assert sum(counts.values()) <= 14  # the HLEN of the quarantine banner, the SCARD of the cold tier
