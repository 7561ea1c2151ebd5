"""Row 43: an import of a large export into an emptied store while a dispatcher, a worker and a submitting
client run.

Every process knew the store's epoch before it was emptied. The import holds the store's maintenance marker
from before its first entry to after the read models: the append script refuses every other write meanwhile,
and no process adopts an epoch from the half-loaded log (which used to let a submit land at a newer position,
the import's next entry be refused as out of order, and the import wipe everything, that submit included).
Nor does any process fold the live read models meanwhile: the import writes them whole, and a reader's fold of
part of the log committed between the import's drop and its write used to leave an index entry behind (a run
listed as running that had ended), found by the chaos test's oracle.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import redis

from queue_core import Client, Settings, StoreUnderMaintenance
from queue_core.eventlog.events import RunSubmitted
from queue_core.eventlog.maintenance_mode import maintenance
from queue_core.eventlog.store import EventStore
from queue_core.eventlog.transfer import import_export, load_entries, wipe, write_export
from queue_core.readmodels.materialized import ReadModels, rebuild, rebuild_live
from tests.support.big_export import ended_runs_export
from tests.support.faults import assert_log_holds
from tests.support.jobs import definition, job_file
from tests.support.processes import Procs, eventually
from tests.support.redis_server import RedisServer

RUNS = 25_000  # 100,000 events, and the definition's


def _outcomes(path: Path) -> list[list[str]]:
    return [line.split(" ", 3) for line in path.read_text().splitlines()] if path.exists() else []


def _acknowledged(path: Path, after: int = 0) -> list[str]:
    return [fields[2] for fields in _outcomes(path) if fields[0] == "ok" and int(fields[1]) > after]


def _started(path: Path) -> int:
    return max((int(fields[1]) for fields in _outcomes(path) if fields[0] == "start"), default=0)


def test_an_import_under_load_succeeds_and_loses_no_acknowledged_submit(
    procs: Procs,
    redis_url: str,
    connection: redis.Redis,
    fresh: RedisServer,
    settings: Settings,
    workspace: Path,
    tmp_path: Path,
):
    # The backup: a store's first events (the definition the client submits) and 100,000 more after them.
    scratch = Client(settings=Settings(redis_url=fresh.url, home=tmp_path / "scratch", workspace=workspace))
    scratch.define(definition("loop", job_file(workspace, "loop.sh", "true\n")))
    head = list(scratch.store.read_chain())
    submitted = scratch.store.load(scratch.submit("loop"))[0].event
    assert isinstance(submitted, RunSubmitted)
    backup = tmp_path / "backup.jsonl.gz"
    entries = ended_runs_export(backup, head, submitted, RUNS)
    assert len(entries) >= 100_000

    # The store as it was: the same log's beginning, so every process learns its epoch.
    store = EventStore(connection)
    load_entries(store, entries[: len(head)], "the backup's first entries")
    procs.fleet(redis_url)
    outcomes, stop = tmp_path / "submits.txt", tmp_path / "stop"
    procs.spawn([sys.executable, "-m", "tests.support.submit_loop", str(outcomes), str(stop), "loop"], "submitter")
    client = Client(settings=settings)
    eventually(lambda: len(_acknowledged(outcomes)) >= 3, what="the client's first submits")
    first = _acknowledged(outcomes)[0]
    eventually(lambda: client.get_run(first)["status"] == "SUCCEEDED", what="the fleet to run the first submit")

    connection.flushall()  # the store comes back empty; everyone goes on running
    emptied_at = _started(outcomes)  # a submit started before this may have been acknowledged and then emptied
    imported = procs.cli("import", str(backup), timeout=300)
    assert imported.returncode == 0, imported.stderr
    assert f"imported {len(entries)} events" in imported.stdout

    eventually(lambda: len(_acknowledged(outcomes, emptied_at)) >= 3, what="submits acknowledged after the import")
    stop.touch()
    refused = [fields for fields in _outcomes(outcomes) if fields[0] == "refused" and int(fields[1]) > emptied_at]
    assert {fields[2] for fields in refused} <= {"StoreUnderMaintenance", "StoreEpochChanged"}, refused
    assert any(fields[2] == "StoreUnderMaintenance" for fields in refused), "no submit met the import"
    assert any("store under maintenance: import in progress" in fields[3] for fields in refused)

    acknowledged = _acknowledged(outcomes, emptied_at)
    for run_id in acknowledged:  # every acknowledged submit is in the log, and runs
        eventually(lambda run_id=run_id: client.get_run(run_id)["status"] == "SUCCEEDED", what=f"run {run_id}")
    assert client.store.length() >= len(entries) + len(acknowledged)
    assert_log_holds(client, acknowledged)


class _RacedReadModels(ReadModels):
    """The live read models as an import rebuilds them, with another process's reader folding the log up to
    ``until`` just after the rebuild's drop and before its write: the interleaving the chaos test once met."""

    def __init__(self, store: EventStore, until: str) -> None:
        super().__init__(store)
        self.until = until
        self.reader_checkpoint: str | None = None

    def drop(self) -> None:
        super().drop()
        self.reader_checkpoint = ReadModels(self.store).catch_up(until=self.until)


def test_a_reader_folding_during_an_import_commits_nothing_and_the_read_models_equal_the_replay(
    client: Client, store: EventStore, workspace: Path, tmp_path: Path
):
    client.define(definition("waits", job_file(workspace, "waits.sh", "true\n")))
    run = client.submit("waits")
    queued_at = store.last_position()  # a reader that folds only this far sees the run queued
    client.cancel(run)
    export = tmp_path / "export.jsonl.gz"
    write_export(export, store.read_chain(), "")
    wipe(store)

    target = _RacedReadModels(store, until=queued_at)
    with maintenance(store, "import"):
        import_export(store, export)
        rebuild(store, target)
    assert target.reader_checkpoint == ""  # the reader folded nothing while the import held the store
    assert client.get_run(run)["status"] == "CANCELLED"
    assert client.read_models.newest("runs", "status:PENDING") == []
    assert_log_holds(client, [run])  # the oracle compares every document and index entry with a replay


def test_a_rebuild_after_an_upgrade_does_not_replace_what_an_import_begun_meanwhile_writes(
    client: Client, store: EventStore, workspace: Path
):
    client.define(definition("kept", job_file(workspace, "kept.sh", "true\n")))
    client.submit("kept")
    before = dict(client.read_models.snapshot())
    with maintenance(store, "import"):  # a reader's rebuild (after an upgrade) reaches its swap now
        with pytest.raises(StoreUnderMaintenance, match="the read models were not replaced"):
            rebuild_live(store, guarded=True)
        assert dict(client.read_models.snapshot()) == before
