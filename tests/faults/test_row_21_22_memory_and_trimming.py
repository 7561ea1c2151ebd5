"""Rows 21 and 22: Redis runs out of memory; the log stream is trimmed.

Row 21: with ``maxmemory`` reached and the ``noeviction`` policy, Redis refuses writes: an append is refused
whole (``StoreFull``, exit 4 on the CLI, one line) and no event is ever evicted. A Redis whose policy
could evict is refused before anything runs.

Row 22: the append script never trims: ten thousand events on one run are all kept, the first included.
A log whose oldest entries were removed by anything but ``jobledger trim`` (a ``MAXLEN`` on some client's
``XADD``, an ``XTRIM``) breaks the hash chain at its head: dispatchers and workers refuse to start on it,
``jobledger check`` names it, while commands can still read, verify and export what is left.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from queue_core import Client, Settings, StoreFull, UnsafeStore
from queue_core.eventlog.events import NewEvent, RunQueued, RunSubmitted
from tests.support.faults import assert_log_holds
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs
from tests.support.redis_server import RedisServer

BIG_ARGS = "x" * 60_000


@pytest.mark.parametrize("store_server", [{"args": ["--maxmemory", "4mb"]}], indirect=True)
def test_a_full_store_refuses_appends_whole_and_evicts_nothing(
    client: Client, workspace: Path, procs: Procs, store_server: RedisServer
):
    client.define(definition("big", job_file(workspace, "x.sh", "true\n")))
    accepted = []
    with pytest.raises(StoreFull, match="the store is full"):
        for _ in range(200):
            accepted.append(client.submit("big", args=BIG_ARGS))
    assert 0 < len(accepted) < 200
    length = client.store.length()
    answer = procs.cli("submit", "big", "--args", "y" * len(BIG_ARGS))  # what filled it, from the CLI
    assert answer.returncode == 4
    assert answer.stderr == "jobledger: the store is full (Redis reached its maxmemory); nothing was appended\n"
    assert client.store.length() == length
    assert [r.aggregate for r in client.store.read() if r.type == "RunSubmitted"] == accepted  # none evicted
    client.store.redis.config_set("maxmemory", "0")  # what the message asks for: more memory
    accepted.append(client.submit("big"))
    assert_log_holds(client, accepted, ended=False)


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-ttl"])
def test_an_evicting_maxmemory_policy_is_refused_by_the_store_and_by_the_client(
    client: Client, settings: Settings, policy: str
):
    client.store.redis.config_set("maxmemory-policy", policy)
    try:
        with pytest.raises(UnsafeStore, match=policy):
            client.store.check_safe()
        with pytest.raises(UnsafeStore, match=policy):
            Client(settings=settings)
    finally:
        client.store.redis.config_set("maxmemory-policy", "noeviction")
    assert_log_holds(client)


def test_ten_thousand_events_on_one_run_are_all_kept_and_a_trimmed_head_is_refused(
    client: Client, procs: Procs, redis_url: str
):
    store = client.store
    run_id = "5b0c9c1e-0000-4000-8000-000000000001"
    submitted = RunSubmitted(
        definition_id="d", definition="d", definition_version=1, cluster="default",
        job={"retryStrategy": {"numRetries": 0}},
    )  # fmt: skip
    first = store.append([NewEvent(run_id, submitted)], {run_id: 0})[0]
    for version in range(1, 10_000, 111):
        count = min(111, 10_000 - version)
        batch = [NewEvent(run_id, RunQueued(attempt=1, job_id=f"{run_id}-1")) for _ in range(count)]
        store.append(batch, {run_id: version})
    assert store.length() == store.version(run_id) == 10_000
    assert store.redis.xrange(store.keys.log, count=1)[0][0].decode() == first.position
    assert_log_holds(client, [run_id], ended=False)

    store.redis.xtrim(store.keys.log, maxlen=5_000)  # what a MAXLEN setting on the stream would do
    dispatcher = procs.dispatcher()
    assert dispatcher.wait(timeout=60) == 4
    worker = procs.worker(redis_url)
    assert worker.wait(timeout=60) == 4
    logged = "".join(p.read_text() for p in procs.log_dir.glob("*.log"))
    assert logged.count("by something other than `jobledger trim`") == 2
    checked = procs.cli("check")
    assert checked.returncode == 1 and "by something other than `jobledger trim`" in checked.stdout
    assert procs.cli("events", "--limit", "1").returncode == 0  # what is left still reads
