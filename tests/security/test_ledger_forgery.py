"""A forger who edits an event and recomputes every chain hash and checksum is caught by the ledger key's seals."""

from __future__ import annotations

from pathlib import Path

import pytest

from queue_core import Client, Settings
from queue_core.errors import DamagedFile
from queue_core.eventlog.archive import history
from queue_core.eventlog.events import ChainSealed, envelope_type
from queue_core.eventlog.positions import position_key
from queue_core.eventlog.seals import load_signer, load_verifier
from queue_core.eventlog.transfer import Entry, import_export, write_export
from tests.support.ledger import (
    append_clusters,
    forged_name,
    ledger_key,
    public_key_alone,
    read_export,
    rechain,
    rewrite_export,
    rewrite_log,
    seal,
    seal_positions,
)
from tests.support.processes import Procs
from tests.support.redis_server import RedisServer


@pytest.fixture
def sealed(client: Client, settings: Settings) -> tuple[str, str]:
    """A log of clusters sealed twice (with entries after the last seal); returns (edited position, its seal)."""
    signer = ledger_key(settings)
    append_clusters(client.store, ["a", "b", "c"])
    first_seal = seal(client.store, signer)
    append_clusters(client.store, ["d", "e"])
    second_seal = seal(client.store, signer)
    append_clusters(client.store, ["f"])
    edited = next(r.position for r in client.events() if getattr(r.event, "name", None) == "d")
    assert position_key(first_seal) < position_key(edited) <= position_key(second_seal)
    return edited, second_seal


def _forge_export(path: Path, edited: str) -> list[Entry]:
    entries, _ = read_export(path)
    envelope = next(e for p, e, _ in entries if p == edited)
    return rechain(entries, edited, forged_name(envelope, "forged"))


def test_a_rechained_export_fails_verify_and_names_the_seal_it_breaks(
    sealed: tuple[str, str], settings: Settings, procs: Procs, tmp_path: Path
):
    edited, second_seal = sealed
    exported = tmp_path / "log.jsonl.gz"
    assert procs.cli("export", str(exported)).returncode == 0
    public = public_key_alone(settings, tmp_path / "auditor")
    rewrite_export(exported, _forge_export(exported, edited), read_export(exported)[1])  # the signature kept
    verified = procs.cli("verify", str(exported), "--public-key", str(public))
    assert verified.returncode == 1
    assert f"chain broken at {second_seal}" in verified.stdout
    assert "not the one the ledger key sealed" in verified.stdout


def test_a_rechained_export_stripped_of_its_seals_and_signature_is_refused_as_not_signed(
    sealed: tuple[str, str], settings: Settings, procs: Procs, tmp_path: Path
):
    edited, _ = sealed
    exported = tmp_path / "log.jsonl.gz"
    assert procs.cli("export", str(exported)).returncode == 0
    public = public_key_alone(settings, tmp_path / "auditor")
    kept = _without_seals(_forge_export(exported, edited))
    rewrite_export(exported, rechain(kept, edited, next(e for p, e, _ in kept if p == edited)))
    assert seal_positions(read_export(exported)[0]) == []
    verified = procs.cli("verify", str(exported), "--public-key", str(public))
    assert verified.returncode == 1
    assert "not signed by the ledger key" in verified.stdout


def test_a_rechained_export_stripped_of_its_seals_with_the_signature_kept_is_refused_as_not_matching(
    sealed: tuple[str, str], settings: Settings, procs: Procs, tmp_path: Path
):
    edited, _ = sealed
    exported = tmp_path / "log.jsonl.gz"
    assert procs.cli("export", str(exported)).returncode == 0
    public = public_key_alone(settings, tmp_path / "auditor")
    trailer = read_export(exported)[1]
    kept = _without_seals(_forge_export(exported, edited))
    rewrite_export(exported, rechain(kept, edited, next(e for p, e, _ in kept if p == edited)), trailer)
    verified = procs.cli("verify", str(exported), "--public-key", str(public))
    assert verified.returncode == 1
    assert "signature does not match" in verified.stdout


def test_import_refuses_a_rechained_export_and_leaves_the_store_empty(
    sealed: tuple[str, str], settings: Settings, procs: Procs, fresh: RedisServer, tmp_path: Path
):
    edited, second_seal = sealed
    exported = tmp_path / "log.jsonl.gz"
    assert procs.cli("export", str(exported)).returncode == 0
    public = public_key_alone(settings, tmp_path / "auditor")
    rewrite_export(exported, _forge_export(exported, edited), read_export(exported)[1])
    into_fresh = Procs({**procs.env, "REDIS_URL": fresh.url}, tmp_path / "fresh-logs")
    imported = into_fresh.cli("import", str(exported), "--public-key", str(public))
    assert imported.returncode == 2
    assert second_seal in imported.stderr and "Traceback" not in imported.stderr
    assert fresh.client().dbsize() == 0


def test_import_of_a_rechained_export_from_python_raises_damaged_file(
    sealed: tuple[str, str], client: Client, settings: Settings, fresh: RedisServer, tmp_path: Path
):
    edited, _ = sealed
    exported = tmp_path / "log.jsonl.gz"
    write_export(exported, history(client.store), chain_start="", signer=load_signer(settings))
    verifier = load_verifier(settings)
    rewrite_export(exported, _forge_export(exported, edited), read_export(exported)[1])
    target = Client(settings=Settings(redis_url=fresh.url, home=tmp_path / "h2", workspace=tmp_path / "w2"))
    with pytest.raises(DamagedFile, match="not the one the ledger key sealed"):
        import_export(target.store, exported, verifier)
    assert fresh.client().dbsize() == 0


def test_the_same_forgery_applied_to_the_live_log_in_redis_fails_verify(
    sealed: tuple[str, str], client: Client, settings: Settings, procs: Procs, tmp_path: Path
):
    edited, second_seal = sealed
    entries = list(client.store.read_chain())
    envelope = next(e for p, e, _ in entries if p == edited)
    rewrite_log(client.store, rechain(entries, edited, forged_name(envelope, "forged")))
    public = public_key_alone(settings, tmp_path / "auditor")
    verified = procs.cli("verify", "--public-key", str(public))
    assert verified.returncode == 1
    assert f"chain broken at {second_seal}" in verified.stdout


def test_without_the_public_key_a_rechained_log_passes_the_chain_and_verify_says_seals_went_unchecked(
    sealed: tuple[str, str], client: Client, settings: Settings, procs: Procs, tmp_path: Path
):
    edited, _ = sealed
    entries = list(client.store.read_chain())
    envelope = next(e for p, e, _ in entries if p == edited)
    rewrite_log(client.store, rechain(entries, edited, forged_name(envelope, "forged")))
    settings.ledger_public_key_path.unlink()
    verified = procs.cli("verify")
    assert verified.returncode == 0 and verified.stdout.startswith("chain intact")
    assert "seals and signatures not checked" in verified.stdout


def _without_seals(entries: list[Entry]) -> list[Entry]:
    return [entry for entry in entries if envelope_type(entry[1]) != ChainSealed.__name__]


def test_a_log_rewritten_from_an_earlier_point_without_its_later_seals_fails_verify_with_max_unsealed(
    sealed: tuple[str, str], client: Client, settings: Settings, procs: Procs
):
    edited, _ = sealed
    entries = list(client.store.read_chain())
    envelope = next(e for p, e, _ in entries if p == edited)
    later = [e for e in entries if position_key(e[0]) < position_key(edited) or envelope_type(e[1]) != "ChainSealed"]
    rewrite_log(client.store, rechain(later, edited, forged_name(envelope, "forged")))
    lenient = procs.cli("verify")  # the seals before the edit hold: the tail after them is only "awaiting a seal"
    assert lenient.returncode == 0 and "entries after it await a seal" in lenient.stdout
    strict = procs.cli("verify", "--max-unsealed", "1")
    assert strict.returncode == 1 and "refused: more than 1 entries" in strict.stdout
