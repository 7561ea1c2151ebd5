"""Row 16: Redis comes back empty: restarted on a fresh directory, or without its AOF.

The store's epoch (the chain hash of its log's first entry, ``jobledger:epoch``) is gone, while every
process that worked with the store remembers it, in memory and in ``$JOBLEDGER_HOME/stores/``. Commands
refuse with one line (exit 4) and append nothing; the running dispatcher dispatches nothing and creates
nothing in the empty store; when the store's own data is back (here: the old server again; in real life
``jobledger restore``), everything goes on. A machine that never saw the store has no epoch to compare
and takes the store as it finds it, as one does after ``jobledger store forget``: the refusal is only as
good as someone's memory of the store.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from queue_core import Client, Settings
from queue_core.errors import StoreEpochChanged
from tests.support.faults import assert_log_holds
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs, eventually
from tests.support.redis_server import RedisServer


def _log(procs: Procs) -> str:
    return "".join(p.read_text() for p in procs.log_dir.glob("*.log"))


@pytest.mark.parametrize("how", ["fresh directory", "AOF off"])
def test_a_store_that_came_back_empty_is_refused_until_its_log_is_back(
    client: Client,
    settings: Settings,
    workspace: Path,
    procs: Procs,
    redis_url: str,
    store_server: RedisServer,
    connection: redis.Redis,
    tmp_path: Path,
    how: str,
):
    client.define(definition("before", job_file(workspace, "x.sh", "true\n")))
    procs.fleet(redis_url)
    first = client.submit("before")
    assert client.wait(first, timeout=30)["status"] == "SUCCEEDED"
    store_server.kill()
    empty = RedisServer(tmp_path / "empty", port=store_server.port)
    if how == "fresh directory":
        empty.start()
    else:  # the same directory, its AOF not read
        empty.start("--appendonly", "no", "--dir", str(store_server.directory))
    try:
        for command in (["runs"], ["submit", "before"]):
            refused = procs.cli(*command)
            assert refused.returncode == 4
            assert refused.stderr.startswith("jobledger: the event store is empty, but it held a log")
            assert refused.stderr.count("\n") == 1
        with pytest.raises(StoreEpochChanged, match="came back without its data"):
            Client(settings=settings)
        with pytest.raises(StoreEpochChanged, match="came back empty"):
            client.submit("before")  # a client made before knows the epoch: its append is refused
        eventually(lambda: "refusing to dispatch" in _log(procs), what="the dispatcher to refuse")
        assert connection.keys("jobledger:*") == []  # nothing was appended, no group or stream made
        forgotten = procs.cli("store", "forget")  # had the data been gone for good: accept the store as it is
        assert forgotten.returncode == 0 and procs.cli("runs", "--json").stdout.strip() == "[]"
    finally:
        empty.kill()
    store_server.start()  # the store's own data is back
    second = client.submit("before")
    assert client.wait(second, timeout=30)["status"] == "SUCCEEDED"
    eventually(lambda: "dispatching again" in _log(procs), what="the dispatcher to say it is back")
    assert_log_holds(client, [first, second])
