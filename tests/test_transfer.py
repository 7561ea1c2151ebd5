"""Export and import: a log carried to a fresh Redis answers exactly as it did, and damage is refused."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import redis

from queue_core import Client, Settings
from queue_core.errors import DamagedFile, StoreNotEmpty
from queue_core.eventlog.archive import history
from queue_core.eventlog.chain import link
from queue_core.eventlog.transfer import ExportReader, import_export, write_export
from tests.support.processes import Procs
from tests.support.redis_server import RedisServer
from tests.support.workload import cli_json, mixed_workload, read_model_snapshot, schedule_workload, workflow_workload


def fresh_client(server: RedisServer, tmp_path: Path) -> Client:
    return Client(settings=Settings(redis_url=server.url, home=tmp_path / "h2", workspace=tmp_path / "w2"))


def test_export_then_import_into_a_fresh_redis_answers_every_status_and_replay_the_same(
    client: Client, procs: Procs, fresh: RedisServer, redis_url: str, tmp_path: Path
):
    runs = mixed_workload(client, rounds=2)
    workflow_runs, children = workflow_workload(client)
    schedules = schedule_workload(client)
    runs += children
    before = read_model_snapshot(client)
    exported = procs.cli("export", str(tmp_path / "log.jsonl.gz"))
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.startswith(f"exported {client.store.length()} events")

    imported = procs.cli("import", str(tmp_path / "log.jsonl.gz"), timeout=60)
    assert imported.returncode == 2 and "already has a log" in imported.stderr  # the same store: refused

    procs.env["REDIS_URL"] = fresh.url
    imported = procs.cli("import", str(tmp_path / "log.jsonl.gz"))
    assert imported.returncode == 0, imported.stderr
    copy = fresh_client(fresh, tmp_path)
    assert [(r.position, r.event_id) for r in copy.store.read()] == [
        (r.position, r.event_id) for r in client.store.read()
    ]
    assert read_model_snapshot(copy) == before
    statuses = {cli_json(redis_url, "status", run)["status"] for run in runs}  # type: ignore[index]
    assert statuses == {"PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"}
    for run in runs:
        assert cli_json(fresh.url, "status", run) == cli_json(redis_url, "status", run)
    assert cli_json(fresh.url, "runs") == cli_json(redis_url, "runs")
    workflow_statuses = set()
    for workflow_run in workflow_runs:
        copied, original = (cli_json(url, "workflow", "status", workflow_run) for url in (fresh.url, redis_url))
        for view in (copied, original):
            for task in view["tasks"].values():  # type: ignore[index]
                task.pop("duration")  # a running task's grows with the clock
        assert copied == original
        workflow_statuses.add(original["status"])  # type: ignore[index]
    assert workflow_statuses == {"RUNNING", "CANCELLED", "PENDING"}
    for name in schedules:
        assert cli_json(fresh.url, "schedule", "show", name) == cli_json(redis_url, "schedule", "show", name)
    outcomes = {e["outcome"] for e in cli_json(redis_url, "schedule", "show", "skipping")["history"]}  # type: ignore[index]
    assert outcomes >= {"fired", "skipped"}
    replayed = procs.cli("replay", "--verify")
    assert (replayed.returncode, replayed.stdout.splitlines()[-1]) == (0, "identical")
    assert procs.cli("verify").stdout.startswith(f"chain intact: {client.store.length()} events")
    # The copy keeps working: commands continue the versions and the chain.
    copy.cancel(runs[0])
    assert copy.verify_chain().intact


def test_import_refuses_a_store_holding_any_jobledger_key_and_writes_nothing(
    client: Client, fresh: RedisServer, tmp_path: Path
):
    mixed_workload(client)
    procs_file = tmp_path / "log.jsonl.gz"
    write_export(procs_file, history(client.store), chain_start="")
    target = fresh.client()
    target.set("jobledger:running", "x")  # not the log, but still jobledger's
    with pytest.raises(StoreNotEmpty, match="already holds jobledger:running"):
        import_export(fresh_client(fresh, tmp_path).store, procs_file)
    assert target.keys("*") == [b"jobledger:running"]


def _rewrite(path: Path, edit: Callable[[list[bytes]], list[bytes]]) -> None:
    """Decompress, change the lines with ``edit``, compress again (a careful forger's edit)."""
    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    path.write_bytes(gzip.compress(b"".join(edit(lines))))


def test_a_flipped_byte_in_an_export_is_refused_by_import_and_reported_by_verify(
    client: Client, procs: Procs, fresh: RedisServer, tmp_path: Path
):
    mixed_workload(client)
    path = tmp_path / "log.jsonl.gz"
    assert procs.cli("export", str(path)).returncode == 0
    good = path.read_bytes()
    assert procs.cli("verify", str(path)).stdout.startswith(f"chain intact: {client.store.length()} events")

    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x01
    path.write_bytes(bytes(flipped))
    procs.env["REDIS_URL"] = fresh.url
    refused = procs.cli("import", str(path))
    assert refused.returncode == 2
    assert refused.stderr.startswith("jobledger: ") and refused.stderr.count("\n") == 1 and "damaged" in refused.stderr
    assert fresh.client().keys("*") == []
    checked = procs.cli("verify", str(path))
    assert checked.returncode == 1 and checked.stdout.startswith(("damaged: ", "chain broken at "))


def test_an_edited_event_is_named_by_the_chain_and_a_recomputed_chain_is_caught_by_the_checksum(
    client: Client, fresh: RedisServer, tmp_path: Path
):
    mixed_workload(client)
    path = tmp_path / "log.jsonl.gz"
    write_export(path, history(client.store), chain_start="")
    victim = next(r.position for r in client.store.read() if r.type == "RunStarted")

    def edit(lines: list[bytes]) -> list[bytes]:
        edited = [line.replace(b'\\"w1\\"', b'\\"w9\\"') if victim.encode() in line else line for line in lines]
        assert edited != lines
        return edited

    def rechain(lines: list[bytes]) -> list[bytes]:
        previous, events = "", []
        for line in lines[1:-1]:
            item = orjson.loads(line)
            item["h"] = previous = link(previous, item["e"].encode())
            events.append(orjson.dumps(item) + b"\n")
        return [lines[0], *events, lines[-1]]

    _rewrite(path, edit)
    store = fresh_client(fresh, tmp_path).store
    with pytest.raises(DamagedFile, match=f"chain breaks at {victim}"):
        import_export(store, path)
    _rewrite(path, rechain)
    with pytest.raises(DamagedFile, match="SHA-256 of its events does not match"):
        import_export(store, path)
    assert fresh.client().keys("*") == []


def test_export_since_and_until_by_position_or_time_carries_the_chain_of_that_part(
    client: Client, procs: Procs, connection: redis.Redis, tmp_path: Path
):
    mixed_workload(client)
    positions = [r.position for r in client.store.read()]
    path = tmp_path / "part.jsonl.gz"
    done = procs.cli("export", str(path), "--since", positions[5], "--until", positions[20])
    assert done.returncode == 0, done.stderr
    with ExportReader(path) as reader:
        assert (reader.header.events, reader.header.first, reader.header.last) == (16, positions[5], positions[20])
        assert reader.header.chain_start == next(h for p, _, h in client.store.read_chain() if p == positions[4])
        assert [p for p, _, _ in reader.entries()] == positions[5:21]
    assert procs.cli("verify", str(path)).stdout.startswith("chain intact: 16 events")
    procs.env["REDIS_URL"] = procs.env["REDIS_URL"].replace("/0", "/1")  # an empty database
    refused = procs.cli("import", str(path))
    assert refused.returncode == 2 and "--since" in refused.stderr

    ms = int(positions[-1].split("-")[0])
    when = datetime.fromtimestamp((ms + 1) / 1000, UTC).isoformat()
    assert procs.cli("export", str(path), "--since", when).returncode == 0
    with ExportReader(path) as reader:
        assert reader.header.events == 0
    assert procs.cli("export", str(path), "--until", "yesterday").returncode == 2
