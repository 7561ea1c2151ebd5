"""The export file (gzip JSON lines: a header, the log's entries, a SHA-256 trailer): writing, reading, loading.

When its writer holds the ledger key, the trailer also carries the key's signature over the file's final
chain head (``seals.file_message``): with the public key, a file edited and re-chained, or stripped of its
seals, is refused.
"""

from __future__ import annotations

import fnmatch
import gzip
import hashlib
import os
import shutil
import stat
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import redis

from queue_core.errors import DamagedFile, InvalidInput, NotFound, StoreNotEmpty
from queue_core.eventlog.chain import ChainReport, EntryCheck, link, walk
from queue_core.eventlog.events import Recorded, decode
from queue_core.eventlog.seals import LedgerSigner, LedgerVerifier, SealCheck, file_message
from queue_core.eventlog.store import EventStore

__all__ = [
    "Entry",
    "ExportReader",
    "Header",
    "encode_entry",
    "ensure_empty",
    "export_records",
    "import_export",
    "load_entries",
    "verify_export",
    "wipe",
    "write_export",
]

FORMAT = "jobledger-log"
VERSION = 1
GZIP_LEVEL = 6  # zlib's default: the gzip module's 9 costs three times the CPU for a few percent
WRITE_BATCH = 1000
LOAD_BATCH = 1000

# (position, envelope bytes, chain hash): one log entry as the store, an export and an archive hold it.
Entry = tuple[str, bytes, str | None]


def encode_entry(position: str, envelope: bytes, chain: str | None) -> bytes:
    """One event line: the exact bytes the checksums cover."""
    return orjson.dumps({"position": position, "e": envelope.decode(), "h": chain}) + b"\n"


def _decode_entry(line: bytes, where: str) -> Entry:
    try:
        item = orjson.loads(line)
        return str(item["position"]), item["e"].encode(), item["h"]
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise DamagedFile(f"{where} is damaged: a malformed event line ({exc})") from None


@dataclass(frozen=True)
class Header:
    """The first line of an export: what it holds, and the chain hash before its first entry."""

    events: int
    first: str | None
    last: str | None
    chain_start: str
    format: str = FORMAT
    version: int = VERSION


def write_export(
    path: str | Path, entries: Iterable[Entry], chain_start: str, signer: LedgerSigner | None = None
) -> Header:
    """Write ``entries`` to ``path`` as an export file; the file appears whole or not at all.

    With ``signer`` (the ledger key), the trailer carries its signature over the file's final chain head.
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise InvalidInput(f"no directory {target.parent} to write {target.name} in")
    try:
        kind = os.stat(target).st_mode
    except FileNotFoundError:
        kind = None
    except OSError as exc:
        raise InvalidInput(f"{target} cannot be written: {exc.strerror}") from None
    if kind is not None and not stat.S_ISREG(kind):  # a device, a FIFO, a folder: never replaced by the file
        raise InvalidInput(f"{target} is not a regular file: an export writes a new file or replaces one")
    digest = hashlib.sha256()
    count, first, last, head = 0, None, None, chain_start
    # The header (first line) needs the count, known only at the end. A gzip file may be several gzip
    # members in a row, read as one stream: the events are compressed once into a scratch file, then
    # copied as they are between a header member and a trailer member.
    with tempfile.TemporaryFile(dir=target.parent) as body:
        with gzip.GzipFile(fileobj=body, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as zipped:
            lines: list[bytes] = []
            for position, envelope, chain in entries:
                lines.append(encode_entry(position, envelope, chain))
                first = first or position
                last, head = position, chain or ""
                if len(lines) == WRITE_BATCH:
                    count += _write_lines(zipped, digest, lines)
            count += _write_lines(zipped, digest, lines)
        header = Header(count, first, last, chain_start)
        body.seek(0)
        partial = target.with_name(f".{target.name}.part")
        try:
            with open(partial, "wb") as out:
                out.write(gzip.compress(orjson.dumps(_header_json(header)) + b"\n", GZIP_LEVEL, mtime=0))
                shutil.copyfileobj(body, out)
                trailer: dict[str, str] = {"sha256": digest.hexdigest()}  # first: readers find the trailer by it
                if signer is not None:
                    trailer["key_id"] = signer.key_id
                    trailer["signature"] = signer.sign(file_message(chain_start, last, head))
                out.write(gzip.compress(orjson.dumps(trailer) + b"\n", GZIP_LEVEL, mtime=0))
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return header


def _write_lines(out: BinaryIO | gzip.GzipFile, digest: Any, lines: list[bytes]) -> int:
    data = b"".join(lines)
    digest.update(data)
    out.write(data)
    written = len(lines)
    lines.clear()
    return written


def _header_json(header: Header) -> dict[str, Any]:
    fields = asdict(header)
    return {"format": fields.pop("format"), "version": fields.pop("version"), **fields}


class ExportReader:
    """Reads an export file: the header at once, the entries as they are iterated, the trailer checked last."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise NotFound(f"no export file at {self.path}")
        self._file = gzip.open(self.path, "rb")  # noqa: SIM115 - closed by __exit__ or on a bad header
        self.trailer: dict[str, Any] = {}  # known once ``entries`` has been read to the end
        try:
            self.header = self._read_header()
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> ExportReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def _damaged(self, why: str) -> DamagedFile:
        return DamagedFile(f"{self.path} is damaged: {why}")

    def _line(self) -> bytes:
        try:
            return self._file.readline()
        except (OSError, EOFError, zlib.error) as exc:
            raise self._damaged(f"not a readable gzip file ({exc})") from None

    def _read_header(self) -> Header:
        try:
            raw = orjson.loads(self._line())
            if raw.get("format") != FORMAT:
                raise self._damaged("not a jobledger log export")
            if raw.get("version") != VERSION:
                raise self._damaged(f"format version {raw.get('version')!r}; this jobledger reads {VERSION}")
            return Header(raw["events"], raw["first"], raw["last"], raw["chain_start"])
        except (orjson.JSONDecodeError, KeyError, AttributeError) as exc:
            raise self._damaged(f"no valid header ({exc})") from None

    def entries(self) -> Iterator[Entry]:
        """Each entry, in order; the checksum, count and bounds are checked when the trailer is reached."""
        digest = hashlib.sha256()
        count, first, last = 0, None, None
        while True:
            line = self._line()
            if not line:
                raise self._damaged("it ends before its checksum trailer")
            if line.startswith(b'{"sha256"'):
                break
            digest.update(line)
            entry = _decode_entry(line, str(self.path))
            count += 1
            first = first or entry[0]
            last = entry[0]
            yield entry
        try:
            trailer = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise self._damaged("its trailer is malformed") from None
        if not isinstance(trailer, dict) or trailer.get("sha256") != digest.hexdigest():
            raise self._damaged("the SHA-256 of its events does not match its trailer")
        if self._line():
            raise self._damaged("there are lines after its trailer")
        if (count, first, last) != (self.header.events, self.header.first, self.header.last):
            raise self._damaged(f"its header announces {self.header.events} events, it holds {count}")
        self.trailer = trailer

    def signature_problem(self, head: str, verifier: LedgerVerifier) -> str | None:
        """Why the file's signature does not vouch for its final chain ``head`` (None when it does).

        Asked once ``entries`` has been read to the end.
        """
        signature = self.trailer.get("signature")
        if not isinstance(signature, str) or not signature:
            return "it is not signed by the ledger key (written without it, or its signature was removed)"
        message = file_message(self.header.chain_start, self.header.last, head)
        if self.trailer.get("key_id") != verifier.key_id or not verifier.valid(signature, message):
            return "its signature does not match: these are not the events the ledger key signed"
        return None


def verify_export(path: str | Path, verifier: LedgerVerifier | None) -> tuple[ChainReport, SealCheck]:
    """Walk an export's chain and seals; with ``verifier``, also require its signature over the final head.

    A file whose format or checksum is damaged raises ``DamagedFile``; a broken chain, seal or signature is
    the report's ``broken_at`` (the file's last position for a signature).
    """
    seals = SealCheck(verifier)
    with ExportReader(path) as reader:
        report = walk(reader.entries(), previous=reader.header.chain_start, check=seals)
        if not report.intact:
            return report, seals
        problem = reader.signature_problem(report.head, verifier) if verifier is not None else None
    if problem is not None:
        seals.failed = True
        return ChainReport(report.checked, reader.header.last or "-", problem, report.head), seals
    return report, seals


# -- loading into an empty store -------------------------------------------------------------------


def _maintenance_keys(store: EventStore) -> frozenset[bytes]:
    """The maintenance marker and its lease: the load's own, so neither a key it finds nor one it removes."""
    return frozenset({store.keys.maintenance.encode(), store.keys.maintenance_lease.encode()})


def ensure_empty(store: EventStore) -> None:
    """Refuse a store holding any jobledger key: a load writes positions only an empty log accepts."""
    if store.redis.exists(store.keys.log):
        raise StoreNotEmpty(f"the store already has a log ({store.keys.log}); import and restore need an empty one")
    own = _maintenance_keys(store)
    keys = store.keys
    # What running processes keep beside the log, and may write while the store is empty: an attempt's lease
    # and output lines, the dispatchers' and timers' locks, the timer's wake-ups (a copy of the schedules).
    beside = (keys.leases, keys.run_logs, keys.dispatcher_leader, keys.timer_lock, keys.timer_instances + "*",
              keys.timer_scheduled, keys.rebuild_lock)  # fmt: skip
    for key in store.redis.scan_iter(match=keys.everything, count=1000):
        name = key.decode() if isinstance(key, bytes) else key
        if name == keys.layout:
            continue  # what the store's structures are, recorded by any process that reached it: no data
        if key in own or any(fnmatch.fnmatchcase(name, pattern) for pattern in beside):
            continue
        raise StoreNotEmpty(f"the store already holds {name}; import and restore need an empty one")


def wipe(store: EventStore) -> None:
    """Delete every key under the prefix but the maintenance marker (undoing a load that failed into a store
    that was empty: the marker kept every other writer out meanwhile, so all it removes is the load's)."""
    batch: list[Any] = []
    own = _maintenance_keys(store)
    for key in store.redis.scan_iter(match=store.keys.everything, count=1000):
        if key in own:
            continue
        batch.append(key)
        if len(batch) == 1000:
            store.redis.delete(*batch)
            batch.clear()
    if batch:
        store.redis.delete(*batch)


def load_entries(
    store: EventStore, entries: Iterable[Entry], source: str, chain_start: str = "", check: EntryCheck | None = None
) -> tuple[int, str | None]:
    """Write entries at their original positions into the log and their aggregates' position lists, checking the chain
    (and, with ``check``, the seals).

    The layout is the append script's: log entries carry ``e`` and ``h``, aggregate entries ``e`` only.
    Returns the number of entries and the last position.
    """
    pipe = store.redis.pipeline(transaction=False)
    previous, count, last = chain_start, 0, None
    genesis: str | None = None
    for position, envelope, chain in entries:
        if chain != link(previous, envelope):
            raise DamagedFile(
                f"{source} is damaged: the hash chain breaks at {position} (it or the event before changed)"
            )
        broken = check(position, envelope, chain) if check is not None else None
        if broken is not None:
            raise DamagedFile(f"{source} is refused at {broken[0]}: {broken[1]}")
        try:
            aggregate = orjson.loads(envelope)["agg"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise DamagedFile(f"{source} is damaged: the envelope at {position} is malformed ({exc})") from None
        pipe.xadd(store.keys.log, {"e": envelope, "h": chain}, id=position)
        pipe.rpush(store.keys.aggregate(aggregate), position)
        previous, count, last = chain, count + 1, position
        genesis = genesis or chain
        if count % LOAD_BATCH == 0:
            _execute(pipe, source)
    if genesis is not None and not chain_start:
        pipe.set(store.keys.epoch, genesis)  # the store's epoch is its log's, as the append script sets it
    _execute(pipe, source)
    return count, last


def _execute(pipe: Any, source: str) -> None:
    try:
        pipe.execute()
    except redis.ResponseError as exc:  # a position out of order: the stream refuses it
        raise DamagedFile(f"{source} is damaged: an entry could not be written at its position ({exc})") from None


def import_export(store: EventStore, path: str | Path, verifier: LedgerVerifier | None = None) -> Header:
    """Load an export file into an empty store, checking chain and checksum as it goes, and with ``verifier``
    its seals and its signature.

    A file found damaged part way is unloaded again, so a refused import leaves the store empty.
    """
    with ExportReader(path) as reader:
        ensure_empty(store)
        if reader.header.chain_start:
            raise InvalidInput(
                f"{path} starts after the log's beginning (an export with --since): its aggregates' earlier "
                "events are missing, so it cannot seed a store"
            )
        try:
            seals = SealCheck(verifier)
            load_entries(store, reader.entries(), str(path), check=seals)
            if verifier is not None:
                problem = reader.signature_problem(seals.head, verifier)
                if problem is not None:
                    raise DamagedFile(f"{path} is refused: {problem}")
        except BaseException:
            wipe(store)
            raise
        return reader.header


def export_records(entries: Iterable[Entry], where: str) -> list[Recorded]:
    """The events of an export's entries, decoded; ``DamagedFile`` naming the first that cannot be read
    (an unknown type, a missing field, an aggregate or version of the wrong kind)."""
    records: list[Recorded] = []
    for position, envelope, _chain in entries:
        try:
            rec = decode(position, envelope)
        except Exception as exc:  # whatever the envelope holds: it is the file's fault
            raise DamagedFile(f"{where} cannot be imported: the event at {position} cannot be read ({exc!r})") from None
        if not isinstance(rec.aggregate, str) or not isinstance(rec.version, int):
            raise DamagedFile(f"{where} cannot be imported: the event at {position} names no aggregate and version")
        records.append(rec)
    return records
