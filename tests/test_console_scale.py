"""The runs page, the overview and a definition's history cost the same Redis work with 200 runs as with 10,000: a
page is a few reads by index score; a search looks at a bounded number of runs whatever the log holds.

Timing pages would be a timed assertion; counting the commands Redis served for them is not, and it is
what keeps a page fast as the log grows (``benchmarks/bench_console.py`` has the times, at 200,000 runs).
"""

from __future__ import annotations

import re

import redis

from queue_core import Client
from queue_core.console.search import SEARCH_CHUNK, SEARCH_SCAN_LIMIT
from tests.support.biglog import append_runs
from tests.support.console_http import request
from tests.support.jobs import definition
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
        for path in ("/runs", "/runs?status=FAILED", "/runs?definition=hourly", last_page, "/", "/definitions/hourly")
    }


SEARCH = "/runs?q=no-such-run&since=7d"  # matches nothing: looks at every run it may, up to the limit


def test_a_runs_page_takes_the_same_redis_commands_with_50_times_the_runs(
    client: Client, procs: Procs, connection: redis.Redis
):
    _, base = start_server(procs, "console", name="console")
    client.define(definition("hourly", "hourly.sh"))  # its page; its runs are appended straight into the log
    append_runs(client.store, SMALL)
    small = _pages(client, base)
    append_runs(client.store, LARGE - SMALL)  # the same store, now with 50 times the runs
    assert f"of {LARGE:,}" in request(base, "/runs").body
    large = _pages(client, base)
    assert list(small.values()) == list(large.values())
    for path, counts in large.items():
        assert not WHOLE_READS & {name.lower() for name in counts if name != "hgetall"}
        # the definitions, workflows, clusters or schedules (small catalog hashes), never the runs
        assert counts.get("hgetall", 0) <= 3
        # the HLEN of the quarantine banner, the SCARD of the cold tier, the lists of the filters, and on the runs
        # page the notifications given up (a catch-up, their index, their documents)
        assert sum(counts.values()) <= 26 or path == "/"
    # The overview: one pipeline of ZCOUNTs (24 + 28 buckets, 5 statuses) and the newest runs' documents.
    assert sum(large["/"].values()) - large["/"].get("zcount", 0) <= 25
    searched = _commands(client.redis, base, SEARCH)
    assert searched.get("zrevrangebyscore", 0) <= SEARCH_SCAN_LIMIT // SEARCH_CHUNK + 1
    assert searched.get("hmget", 0) <= SEARCH_SCAN_LIMIT // SEARCH_CHUNK + 1
