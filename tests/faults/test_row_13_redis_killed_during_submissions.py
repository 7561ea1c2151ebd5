"""Row 13: redis-server is killed (SIGKILL) during a burst of submissions and restarted from its AOF.

Four threads submit distinct runs, each with an idempotency key. A submission whose reply was lost is
retried by the store with the same event ids for a few seconds (``DUP`` if it landed); one that still
fails is unacknowledged (``StoreUnavailable``), and its caller submits it again with the same key.
Every acknowledged run is on the log, no key is claimed twice. Redis writes the AOF before it replies, so
a killed process loses nothing acknowledged under either ``appendfsync`` (a power loss is another matter:
see the README's Guarantees).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from queue_core import Client, Settings, StoreUnavailable
from tests.support.faults import assert_log_holds
from tests.support.jobs import definition, job_file
from tests.support.processes import eventually
from tests.support.redis_server import RedisServer

THREADS = 4
PER_THREAD = 30


@pytest.mark.parametrize(
    "store_server", [{"appendfsync": "always"}, {"appendfsync": "everysec"}], indirect=True, ids=["always", "everysec"]
)
def test_every_acknowledged_submission_survives_a_kill_9_of_redis_and_none_is_doubled(
    store_server: RedisServer, settings: Settings, workspace: Path
):
    Client(settings=settings).define(definition("burst", job_file(workspace, "x.sh", "true\n")))
    acknowledged: dict[str, str] = {}
    unacknowledged: list[str] = []
    lock = threading.Lock()

    def submit_all(thread: int) -> None:
        client: Client | None = None
        for i in range(PER_THREAD):
            key = f"t{thread}-{i}"
            try:
                client = client or Client(settings=settings)
                run_id = client.submit("burst", idempotency_key=key)
            except StoreUnavailable:
                client = None  # a new one when the store is back
                with lock:
                    unacknowledged.append(key)
                continue
            with lock:
                acknowledged[key] = run_id

    threads = [threading.Thread(target=submit_all, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    eventually(lambda: len(acknowledged) >= THREADS * PER_THREAD // 4, what="a quarter of the burst")
    store_server.kill()
    with lock:
        before_the_kill = len(acknowledged)
    store_server.start()
    for thread in threads:
        thread.join(timeout=120)
    client = Client(settings=settings)
    for key in unacknowledged:  # the caller tries again with the same key: the run it may have made, or a new one
        acknowledged[key] = client.submit("burst", idempotency_key=key)
    assert before_the_kill < THREADS * PER_THREAD  # the kill came in the middle of the burst
    print(f"acknowledged before the kill: {before_the_kill}; unacknowledged: {len(unacknowledged)}")
    assert len(set(acknowledged.values())) == THREADS * PER_THREAD
    assert len(client.events(type="RunSubmitted")) == THREADS * PER_THREAD
    assert_log_holds(client, acknowledged.values(), ended=False)
