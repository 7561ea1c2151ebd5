"""A ledger key for tests, a log with seals on it, and the forger's tools: edit one event, re-chain the rest."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from collections.abc import Iterable
from pathlib import Path

import orjson

from queue_core import Settings
from queue_core.eventlog.chain import link
from queue_core.eventlog.events import ChainSealed, ClusterRegistered, NewEvent, envelope_type
from queue_core.eventlog.seals import LedgerSigner, load_signer
from queue_core.eventlog.store import EventStore
from queue_core.eventlog.transfer import Entry, ExportReader, encode_entry
from scheduler.sealing import Sealer

__all__ = [
    "append_clusters",
    "forged_name",
    "ledger_key",
    "public_key_alone",
    "read_export",
    "rechain",
    "rewrite_export",
    "rewrite_log",
    "seal",
    "seal_positions",
]


def ledger_key(settings: Settings) -> LedgerSigner:
    """The home's ledger key, created as ``jobledger scheduler`` creates it."""
    signer = load_signer(settings, create=True)
    assert signer is not None
    return signer


def public_key_alone(settings: Settings, folder: Path) -> Path:
    """Copy the public key to ``folder`` and delete the private key: what an auditor has."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / "ledger.pub"
    shutil.copy(settings.ledger_public_key_path, copy)
    settings.ledger_key_path.unlink()
    return copy


def append_clusters(store: EventStore, names: Iterable[str]) -> None:
    for name in names:
        store.append([NewEvent(f"cluster:{name}", ClusterRegistered(name, 1, "local"))], {f"cluster:{name}": 0})


def seal(store: EventStore, signer: LedgerSigner) -> str:
    """Seal the log's head now (as the leading dispatcher does); returns the position the seal covers."""
    recorded = Sealer(store, signer).seal()
    assert recorded is not None and isinstance(recorded.event, ChainSealed)
    return recorded.event.position


def seal_positions(entries: Iterable[Entry]) -> list[str]:
    """The positions the seals among ``entries`` cover, in order."""
    return [
        orjson.loads(envelope)["d"]["position"]
        for _, envelope, _ in entries
        if envelope_type(envelope) == ChainSealed.__name__
    ]


def forged_name(envelope: bytes, name: str) -> bytes:
    """The envelope of a ``ClusterRegistered`` with another name: the forger's one-event edit."""
    data = orjson.loads(envelope)
    data["d"]["name"] = name
    return orjson.dumps(data)


def rechain(entries: list[Entry], position: str, envelope: bytes, chain_start: str = "") -> list[Entry]:
    """``entries`` with the one at ``position`` replaced by ``envelope`` and every chain hash recomputed."""
    forged: list[Entry] = []
    head = chain_start
    for at, original, _ in entries:
        body = envelope if at == position else original
        head = link(head, body)
        forged.append((at, body, head))
    return forged


def rewrite_export(path: Path, entries: list[Entry], trailer_extra: dict[str, str] | None = None) -> None:
    """Write ``entries`` back into the export at ``path`` exactly as the writer lays it out: its header, the
    events, and a trailer with their SHA-256 recomputed (plus ``trailer_extra``: a signature kept from before)."""
    with gzip.open(path) as exported:
        header = exported.readline()
    lines = [encode_entry(*entry) for entry in entries]
    first = entries[0][0] if entries else None
    last = entries[-1][0] if entries else None
    head_data = orjson.loads(header)
    head_data.update(events=len(entries), first=first, last=last)
    kept = {key: value for key, value in (trailer_extra or {}).items() if key != "sha256"}
    trailer = {"sha256": hashlib.sha256(b"".join(lines)).hexdigest(), **kept}
    with open(path, "wb") as out:
        out.write(gzip.compress(orjson.dumps(head_data) + b"\n", mtime=0))
        out.write(gzip.compress(b"".join(lines), mtime=0))
        out.write(gzip.compress(orjson.dumps(trailer) + b"\n", mtime=0))


def read_export(path: Path) -> tuple[list[Entry], dict[str, str]]:
    """An export's entries and its trailer."""
    with ExportReader(path) as reader:
        entries = list(reader.entries())
        return entries, dict(reader.trailer)


def rewrite_log(store: EventStore, entries: list[Entry]) -> None:
    """Replace the log stream in Redis by ``entries`` at their positions (what a forger with Redis access does)."""
    pipe = store.redis.pipeline(transaction=True)
    pipe.delete(store.keys.log)
    for position, envelope, chain in entries:
        pipe.xadd(store.keys.log, {"e": envelope, "h": chain or ""}, id=position)
    pipe.execute()
