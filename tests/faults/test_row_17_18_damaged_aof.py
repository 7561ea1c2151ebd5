"""Rows 17 and 18: the AOF is damaged while Redis is down.

Row 17, a truncated tail (a half-written last command, as a crash mid-write leaves it): Redis loads the
AOF anyway (``aof-load-truncated``), without the half-written transaction. The append script's writes are
one MULTI/EXEC in the AOF, so the last batch vanishes whole: the last acknowledged event is lost (this is
what ``appendfsync`` bounds, see the README's Guarantees), nothing is half there, versions stay contiguous
and a rebuilt projection equals the live one.

Row 18, damage in the middle: redis-server refuses to start. Nothing runs against an empty store instead:
with ``REDIS_URL`` commands say ``store unavailable``; the embedded store says ``store cannot load`` with
the line of Redis's own log that tells why.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from queue_core import Client, Settings
from tests.support.faults import assert_log_holds
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs
from tests.support.redis_server import RedisServer


def _newest_incr_aof(server: RedisServer) -> Path:
    """The AOF file commands are appended to: the newest incr file (Redis 7), or the one AOF (Redis 6.2)."""
    files = [*(server.directory / "appendonlydir").glob("*.incr.aof"), *server.directory.glob("appendonly.aof")]
    return max(files, key=lambda p: p.stat().st_mtime_ns)


def _damage_the_middle(aof: Path) -> None:
    """Overwrite the first byte of a command in the middle of the AOF: no longer RESP, not just other data."""
    data = bytearray(aof.read_bytes())
    start = data.index(b"\r\n*", len(data) // 2) + 2
    data[start] = ord("?")
    aof.write_bytes(bytes(data))


def test_a_truncated_aof_tail_loses_the_last_batch_whole_and_the_log_still_holds(
    client: Client, settings: Settings, workspace: Path, store_server: RedisServer
):
    client.define(definition("kept", job_file(workspace, "x.sh", "true\n")))
    kept = [client.submit("kept") for _ in range(5)]
    client.read_models.catch_up()
    last = client.submit("kept")  # acknowledged, and the last write in the AOF
    store_server.stop()
    aof = _newest_incr_aof(store_server)
    os.truncate(aof, aof.stat().st_size - 7)
    store_server.start()
    assert "loaded anyway because aof-load-truncated is enabled" in (store_server.directory / "redis.log").read_text()
    restarted = Client(settings=settings)
    submitted = [e.aggregate for e in restarted.events(type="RunSubmitted")]
    assert submitted == kept  # the half-written last batch is gone, whole
    assert restarted.store.version(last) == 0 and restarted.store.length() == len(kept) + 2  # + claim + definition
    assert_log_holds(restarted, kept, ended=False)


def test_an_aof_damaged_in_the_middle_keeps_redis_down_and_nothing_runs_against_an_empty_store(
    client: Client, workspace: Path, procs: Procs, store_server: RedisServer
):
    client.define(definition("kept", job_file(workspace, "x.sh", "true\n")))
    for _ in range(20):
        client.submit("kept")
    store_server.stop()
    _damage_the_middle(_newest_incr_aof(store_server))
    with pytest.raises(RuntimeError, match="redis-server exited"):
        store_server.start()
    assert "Bad file format reading the append only file" in (store_server.directory / "redis.log").read_text()
    answer = procs.cli("runs")
    assert answer.returncode == 4 and answer.stderr.startswith("jobledger: store unavailable: ")
    assert answer.stderr.count("\n") == 1


def test_the_embedded_store_says_it_cannot_load_a_damaged_aof(embedded_home: Path, tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(JOBLEDGER_HOME=str(embedded_home), JOBLEDGER_WORKSPACE=str(tmp_path / "ws"))
    procs = Procs(env, tmp_path / "logs")
    for name in ("one", "two", "three"):
        assert procs.cli("cluster", "create", name).returncode == 0
    assert procs.cli("store", "stop").returncode == 0
    _damage_the_middle(next((embedded_home / "redis").rglob("*.aof")))
    answer = procs.cli("runs")
    assert answer.returncode == 4
    assert answer.stderr.startswith("jobledger: store cannot load: the embedded redis-server refused its data: ")
    assert "Bad file format reading the append only file" in answer.stderr
    assert answer.stderr.count("\n") == 1
