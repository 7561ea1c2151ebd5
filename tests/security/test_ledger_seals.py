"""The ledger key's seals: what the scheduler appends, when it appends nothing, and what verify says of them."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import orjson

from queue_core import Client, Settings
from queue_core.eventlog.events import ChainSealed, LedgerKeyAdopted
from queue_core.eventlog.seals import LEDGER_AGGREGATE, LedgerSigner, load_signer
from scheduler.sealing import Sealer
from tests.support.ledger import append_clusters, ledger_key, public_key_alone, seal
from tests.support.processes import Procs, eventually


class FloatClock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _seals(client: Client) -> list[ChainSealed]:
    return [r.event for r in client.store.load(LEDGER_AGGREGATE) if isinstance(r.event, ChainSealed)]


def test_an_untouched_sealed_log_and_export_verify_intact_with_the_public_key_alone(
    client: Client, settings: Settings, procs: Procs, tmp_path: Path
):
    signer = ledger_key(settings)
    append_clusters(client.store, ["a", "b"])
    seal(client.store, signer)
    append_clusters(client.store, ["c"])
    sealed_through = seal(client.store, signer)
    append_clusters(client.store, ["d", "e"])
    exported = tmp_path / "log.jsonl.gz"
    wrote = procs.cli("export", str(exported))
    assert f"signed by the ledger key {signer.key_id}" in wrote.stdout
    public = public_key_alone(settings, tmp_path / "auditor")
    assert not settings.ledger_key_path.exists()

    log = procs.cli("verify", "--public-key", str(public))
    assert log.returncode == 0 and log.stdout.startswith("chain intact")
    assert f"sealed through {sealed_through} by key {signer.key_id} (2 seals); 2 entries after it await a seal" in (
        log.stdout
    )
    copy = procs.cli("verify", str(exported), "--public-key", str(public), "--json")
    report = orjson.loads(copy.stdout)
    assert copy.returncode == 0 and report["intact"]
    assert report["seals"]["sealed_through"] == sealed_through and report["seals"]["key_id"] == signer.key_id


def test_a_seal_loop_with_no_new_entries_appends_nothing(client: Client, settings: Settings):
    clock = FloatClock()
    sealer = Sealer(client.store, ledger_key(settings), every=2.0, clock=clock)
    append_clusters(client.store, ["a"])
    assert sealer.tick() is not None  # the adoption, then a seal over it and "a"
    length = client.store.length()
    for _ in range(5):
        clock.now += 10
        assert sealer.tick() is None
    assert client.store.length() == length
    append_clusters(client.store, ["b"])
    assert sealer.tick() is None  # not yet: at most one seal every two seconds
    clock.now += 2
    assert sealer.tick() is not None and client.store.length() == length + 2


def test_a_log_older_than_the_key_verifies_and_is_covered_by_its_first_seal(
    client: Client, settings: Settings, procs: Procs
):
    append_clusters(client.store, ["a", "b", "c"])  # written before any ledger key existed
    old = client.store.length()
    signer = ledger_key(settings)
    sealed_through = seal(client.store, signer)
    adoption = client.store.load(LEDGER_AGGREGATE)[0]
    assert isinstance(adoption.event, LedgerKeyAdopted) and adoption.event.key_id == signer.key_id
    assert "PRIVATE" not in orjson.dumps(adoption.event.to_data()).decode()
    verified = procs.cli("verify")
    assert verified.returncode == 0
    assert f"sealed through {sealed_through}" in verified.stdout
    assert (
        f"the {old} entries before the key's adoption at {adoption.position} were chained under the old, "
        "unsealed rule and are covered by the first seal"
    ) in verified.stdout


def test_a_log_sealed_by_another_key_is_broken_at_the_first_seal(
    client: Client, settings: Settings, procs: Procs, tmp_path: Path
):
    append_clusters(client.store, ["a"])
    sealed_through = seal(client.store, ledger_key(settings))
    other = Settings(redis_url=settings.redis_url, home=tmp_path / "elsewhere", workspace=settings.workspace)
    impostor = load_signer(other, create=True)
    assert impostor is not None
    verified = procs.cli("verify", "--public-key", str(other.ledger_public_key_path))
    assert verified.returncode == 1
    assert f"chain broken at {sealed_through}: sealed by key" in verified.stdout
    assert f"not the ledger key {impostor.key_id}" in verified.stdout


def test_a_dispatcher_holding_another_key_does_not_seal_a_log_sealed_by_the_ledger_key(
    client: Client, settings: Settings, tmp_path: Path
):
    append_clusters(client.store, ["a"])
    seal(client.store, ledger_key(settings))
    append_clusters(client.store, ["b"])
    other = load_signer(Settings(None, tmp_path / "elsewhere", tmp_path), create=True)
    assert isinstance(other, LedgerSigner)
    length = client.store.length()
    assert Sealer(client.store, other).seal() is None
    assert client.store.length() == length


def test_kill_9_of_the_scheduler_while_it_seals_leaves_a_log_that_verifies(
    client: Client, settings: Settings, procs: Procs
):
    stop = threading.Event()

    def append_all_along() -> None:
        n = 0
        while not stop.is_set():
            append_clusters(client.store, [f"busy-{n}"])
            n += 1

    appender = threading.Thread(target=append_all_along)
    appender.start()
    try:
        for _ in range(3):
            scheduler = procs.dispatcher(timer=True)
            before = len(_seals(client))
            eventually(lambda before=before: len(_seals(client)) > before, timeout=60, what="a new seal")
            os.killpg(scheduler.pid, signal.SIGKILL)  # the sealer seals all along: killed between or within seals
            scheduler.wait()
    finally:
        stop.set()
        appender.join()
    verified = procs.cli("verify")
    assert verified.returncode == 0, verified.stdout
    assert verified.stdout.startswith("chain intact") and "sealed through" in verified.stdout
    assert settings.ledger_public_key_path.exists()


def test_a_signed_export_of_part_of_the_log_verifies_and_a_sealed_log_passes_the_oracle(
    client: Client, settings: Settings, procs: Procs, tmp_path: Path
):
    signer = ledger_key(settings)
    append_clusters(client.store, ["a", "b"])
    seal(client.store, signer)
    append_clusters(client.store, ["c"])
    since = client.store.last_position()
    sealed_through = seal(client.store, signer)
    append_clusters(client.store, ["d"])
    part = tmp_path / "part.jsonl.gz"
    assert procs.cli("export", str(part), "--since", since).returncode == 0
    verified = procs.cli("verify", str(part))
    assert verified.returncode == 0 and f"sealed through {sealed_through}" in verified.stdout
    assert procs.cli("check").returncode == 0
