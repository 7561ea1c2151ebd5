"""The archive of the log (S3 or a folder): closed Parquet segments with checksums and a manifest; trimming, and
reading history back.

A segment archived by a holder of the ledger key carries its signature over the segment's chain (in, last
position, out) in the manifest, so the archive verifies with the public key alone (``seals.py``).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
import redis

from queue_core.errors import ArchiveMismatch, ArchiveUnavailable, DamagedFile, TrimRefused
from queue_core.eventlog.chain import ChainReport, EntryCheck, walk
from queue_core.eventlog.events import Recorded, decode
from queue_core.eventlog.folder_bucket import FolderBucket
from queue_core.eventlog.parquet import parquet_bytes, rows_of
from queue_core.eventlog.positions import before as _before
from queue_core.eventlog.positions import position_key
from queue_core.eventlog.seals import LedgerSigner, LedgerVerifier, SealCheck, file_message
from queue_core.eventlog.store import READ_BATCH, EventStore
from queue_core.eventlog.transfer import Entry, encode_entry, ensure_empty, load_entries, wipe

__all__ = [
    "DEFAULT_SEGMENT_SIZE",
    "ArchiveLocation",
    "Segment",
    "archive_log",
    "envelope_batches",
    "event_batches",
    "events_after",
    "hash_before",
    "history",
    "history_events",
    "raw_batches",
    "read_manifest",
    "read_segment",
    "replay_batches",
    "restore_log",
    "trim_log",
    "trim_point",
    "verify_archive",
    "verify_log",
]

DEFAULT_SEGMENT_SIZE = 10_000
# A segment's columns: what DuckDB reads the archived log by (a chain hash is null before the chain existed).
SEGMENT_COLUMNS = {"position": "VARCHAR", "envelope": "VARCHAR", "chain": "VARCHAR"}
MANIFEST_FORMAT = "jobledger-archive"
MANIFEST_VERSION = 1
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class ArchiveLocation:
    """Where an archive lives: a bucket, a key prefix, and an S3 endpoint (None: AWS itself); or a local
    ``folder`` instead of a bucket."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    folder: str | None = None

    def key(self, name: str) -> str:
        return f"{self.prefix.strip('/')}/{name}" if self.prefix.strip("/") else name

    @property
    def where(self) -> str:
        """The archive as a person names it: ``s3://BUCKET/PREFIX`` or its folder."""
        if self.folder:
            return str(Path(self.folder) / self.key(""))
        return f"s3://{self.bucket}/{self.key('')}"

    def client(self) -> Any:
        if self.folder:
            return FolderBucket(Path(self.folder))
        import boto3  # here, not at the top: every CLI call and worker would pay for importing it

        region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or DEFAULT_REGION
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=region)


@dataclass(frozen=True)
class Segment:
    """One archived object: ``count`` consecutive log entries, their SHA-256, and the chain around them."""

    key: str
    first: str
    last: str
    count: int
    sha256: str
    chain_in: str
    chain_out: str
    key_id: str = ""  # the ledger key that signed it ("": archived without the key)
    signature: str = ""

    def signature_problem(self, verifier: LedgerVerifier) -> str | None:
        """Why the ledger key does not vouch for this segment's chain (None when it does)."""
        if not self.signature:
            return f"archive segment {self.key} is not signed by the ledger key"
        message = file_message(self.chain_in, self.last, self.chain_out)
        if self.key_id != verifier.key_id or not verifier.valid(self.signature, message):
            return f"the signature of archive segment {self.key} does not match"
        return None


def _unavailable(what: str, exc: Exception) -> ArchiveUnavailable:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        return ArchiveUnavailable(f"S3 refused to {what}: {exc.response.get('Error', {}).get('Message', exc)}")
    return ArchiveUnavailable(f"could not {what} in S3: {exc}")


def _s3_call(what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return call(*args, **kwargs)
    except (BotoCoreError, ClientError) as exc:
        raise _unavailable(what, exc) from None


def read_manifest(location: ArchiveLocation, s3: Any = None) -> list[Segment]:
    """The archive's segments, oldest first (none when nothing was archived there yet)."""
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = s3 or location.client()
    try:
        body = s3.get_object(Bucket=location.bucket, Key=location.key("manifest.json"))["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return []
        raise _unavailable("read the manifest", exc) from None
    except BotoCoreError as exc:
        raise _unavailable("read the manifest", exc) from None
    try:
        manifest = orjson.loads(body)
        if manifest.get("format") != MANIFEST_FORMAT or manifest.get("version") != MANIFEST_VERSION:
            raise DamagedFile(f"{location.where}manifest.json is not a jobledger archive")
        return [Segment(**item) for item in manifest["segments"]]
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise DamagedFile(f"the archive's manifest is damaged ({exc})") from None


def _write_manifest(location: ArchiveLocation, s3: Any, segments: list[Segment]) -> None:
    body = orjson.dumps(
        {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "segments": [asdict(s) for s in segments]},
        option=orjson.OPT_INDENT_2,
    )
    _s3_call("write the manifest", s3.put_object, Bucket=location.bucket, Key=location.key("manifest.json"), Body=body)


def read_segment(location: ArchiveLocation, segment: Segment, s3: Any = None) -> list[Entry]:
    """A segment's entries, after checking its SHA-256 against the manifest and the object's metadata.

    A segment is a Parquet file (position, envelope, chain; its SHA-256 over the object); archives written
    before Parquet hold gzip JSON-lines segments (their SHA-256 over the decompressed lines), read alike.
    """
    s3 = s3 or location.client()
    reply = _s3_call(f"read {segment.key}", s3.get_object, Bucket=location.bucket, Key=segment.key)
    where = f"archive segment {segment.key}"
    body = reply["Body"].read()
    if segment.key.endswith(".parquet"):
        data = body
    else:
        try:
            data = gzip.decompress(body)
        except (OSError, EOFError, zlib.error) as exc:
            raise DamagedFile(f"{where} is damaged: not a readable gzip object ({exc})") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != segment.sha256 or reply.get("Metadata", {}).get("sha256") != segment.sha256:
        raise DamagedFile(f"{where} is damaged: its SHA-256 does not match the manifest")
    if segment.key.endswith(".parquet"):
        rows = rows_of(data, "position, envelope, chain", where)
        entries = [(position, envelope.encode(), chain) for position, envelope, chain in rows]
    else:
        try:
            lines = map(orjson.loads, data.splitlines())
            entries = [(item["position"], item["e"].encode(), item["h"]) for item in lines]
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise DamagedFile(f"{where} is damaged: a malformed event line ({exc})") from None
    if len(entries) != segment.count or not entries or (entries[0][0], entries[-1][0]) != (segment.first, segment.last):
        raise DamagedFile(f"{where} does not hold the entries the manifest lists")
    return entries


def archive_log(
    store: EventStore,
    location: ArchiveLocation,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    signer: LedgerSigner | None = None,
) -> list[Segment]:
    """Upload the closed segments not archived yet; returns the new ones. Running it again uploads nothing.

    A segment is closed when it is full and the log has moved past it (the newest entry is never archived).
    With ``signer`` (the ledger key) each new segment is signed.
    """
    s3 = location.client()
    segments = read_manifest(location, s3)
    if segments:
        _check_continues(store, segments[-1])
        after, chain = segments[-1].last, segments[-1].chain_out
    elif trim_point(store) is not None:
        raise ArchiveMismatch("the log was trimmed: archive it where its beginning is archived")
    else:
        after, chain = "0", ""
    added: list[Segment] = []
    batch: list[Entry] = []
    newest = store.last_position()
    for entry in store.read_chain(after=after):
        if entry[0] == newest:
            break
        batch.append(entry)
        if len(batch) == segment_size:
            segment = _upload(location, s3, batch, chain, signer)
            added.append(segment)
            chain = segment.chain_out
            batch = []
            _write_manifest(location, s3, segments + added)  # each segment is listed as soon as it is stored
    return added


def _check_continues(store: EventStore, newest: Segment) -> None:
    """Refuse to extend an archive of another log: its newest entry must be the one this log holds there."""
    point = trim_point(store)
    if point is not None and position_key(newest.last) < position_key(point[0]):
        return  # that entry was trimmed from Redis because this archive held it
    found = list(store.read_chain(after=_before(newest.last), until=newest.last))
    if not found or found[-1][0] != newest.last or found[-1][2] != newest.chain_out:
        raise ArchiveMismatch(f"the archive's last entry {newest.last} is not this log's: another store's archive?")


def _upload(
    location: ArchiveLocation, s3: Any, batch: list[Entry], chain_in: str, signer: LedgerSigner | None
) -> Segment:
    rows = [{"position": p, "envelope": envelope.decode(), "chain": chain} for p, envelope, chain in batch]
    data = parquet_bytes(SEGMENT_COLUMNS, rows)
    first, last = batch[0][0], batch[-1][0]
    chain_out = batch[-1][2] or ""
    signed = (signer.key_id, signer.sign(file_message(chain_in, last, chain_out))) if signer else ("", "")
    segment = Segment(
        key=location.key(f"segments/{first}-{last}.parquet"),
        first=first,
        last=last,
        count=len(batch),
        sha256=hashlib.sha256(data).hexdigest(),
        chain_in=chain_in,
        chain_out=chain_out,
        key_id=signed[0],
        signature=signed[1],
    )
    metadata = {
        "sha256": segment.sha256,
        "first": first,
        "last": last,
        "count": str(segment.count),
        "chain-in": chain_in or "-",  # S3 drops empty metadata values
        "chain-out": segment.chain_out,
    }
    _s3_call(
        f"upload {segment.key}", s3.put_object, Bucket=location.bucket, Key=segment.key, Body=data, Metadata=metadata
    )
    return segment


# -- trimming --------------------------------------------------------------------------------------


def trim_point(store: EventStore) -> tuple[str, ArchiveLocation] | None:
    """Where the log in Redis starts after a trim, and the archive holding what came before; None if untrimmed."""
    raw: Any = store.redis.hgetall(store.keys.trim)
    if not raw:
        return None
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    location = ArchiveLocation(
        fields.get("bucket", ""), fields.get("prefix", ""), fields.get("endpoint_url") or None, fields.get("folder")
    )
    return fields["before"], location


def trim_log(store: EventStore, location: ArchiveLocation, before: str) -> int:
    """Drop log entries before ``before`` from Redis once the archive's copy is read back and matches them.

    Aggregate streams are kept: commands load an aggregate from its own stream. Returns the entries dropped.
    """
    point = trim_point(store)
    if point is not None and point[1] != location:
        where = point[1]
        raise ArchiveMismatch(f"the log was trimmed against {where.where}; trim against it again")
    if store.redis.xlen(store.keys.log) == 0 or position_key(store.last_position()) < position_key(before):
        raise TrimRefused(f"nothing in the log at or after {before}: a trim keeps at least the newest event")
    oldest: Any = store.redis.xrange(store.keys.log, count=1)
    below: Any = store.redis.xrevrange(store.keys.log, max=f"({before}", min="-", count=1)
    if not below:
        return 0
    first_held, last_doomed = _text(oldest[0][0]), _text(below[0][0])
    _check_readers(store, before, last_doomed)
    s3 = location.client()
    segments = read_manifest(location, s3)
    covering = [
        s
        for s in segments
        if position_key(s.last) >= position_key(first_held) and position_key(s.first) < position_key(before)
    ]
    if not covering or position_key(covering[-1].last) < position_key(last_doomed):
        archived = segments[-1].last if segments else "nothing"
        raise ArchiveMismatch(f"the archive holds the log up to {archived}, not everything before {before}")
    # Read each covering segment back and compare it, by SHA-256, with the same span of the log in Redis.
    held = iter(store.read_chain(until=covering[-1].last))
    for segment in covering:
        stored = [e for e in read_segment(location, segment, s3) if position_key(e[0]) >= position_key(first_held)]
        ours = [next(held, None) for _ in stored]
        if _digest(ours) != _digest(stored):
            raise ArchiveMismatch(f"archive segment {segment.key} does not match the log in Redis; nothing trimmed")
    mapping: dict[Any, Any] = {"before": before, "dropped": last_doomed, "bucket": location.bucket}
    if location.folder:
        mapping["folder"] = location.folder
    # The chain hash of the last entry dropped: what the oldest entry left must follow from (health.py).
    mapping["dropped_chain"] = _text(below[0][1][b"h"])
    mapping["prefix"] = location.prefix
    if location.endpoint_url:
        mapping["endpoint_url"] = location.endpoint_url
    _keep_held(store, first_held, last_doomed)
    # The trim point first: a reader between these two commands reads the archive for what is gone or not.
    store.redis.hset(store.keys.trim, mapping=mapping)
    return int(store.redis.xtrim(store.keys.log, minid=before, approximate=False))


def _keep_held(store: EventStore, first: str, last: str) -> None:
    """Copy the entries about to be dropped whose aggregates are still held in Redis (their position lists
    name them) to the kept hash, where commands loading those aggregates find them."""
    for entries in store.read_raw(after=_before(first), until=last):
        aggregates = [orjson.loads(fields[b"e"])["agg"] for _position, fields in entries]
        pipe = store.redis.pipeline(transaction=False)
        for aggregate in aggregates:
            pipe.exists(store.keys.aggregate(aggregate))
        held = pipe.execute()
        kept: dict[Any, Any] = {
            position: fields[b"e"] for (position, fields), h in zip(entries, held, strict=True) if h
        }
        if kept:
            store.redis.hset(store.keys.kept, mapping=kept)


def _digest(entries: Sequence[Entry | None]) -> str:
    return hashlib.sha256(b"".join(encode_entry(*e) if e else b"-" for e in entries)).hexdigest()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _check_readers(store: EventStore, before: str, last_doomed: str) -> None:
    """Refuse to drop entries a dispatcher has not read or acknowledged yet."""
    try:
        groups: Any = store.redis.xinfo_groups(store.keys.log)
    except redis.ResponseError:
        return  # no log stream, so no groups
    for group in groups:
        name = group["name"].decode() if isinstance(group["name"], bytes) else group["name"]
        delivered = group["last-delivered-id"]
        delivered = delivered.decode() if isinstance(delivered, bytes) else delivered
        if position_key(delivered) < position_key(last_doomed):
            raise TrimRefused(f"consumer group {name!r} has read only up to {delivered}; nothing trimmed")
        pending: Any = store.redis.xpending(store.keys.log, name)
        if pending["pending"] and position_key(pending["min"].decode()) < position_key(before):
            raise TrimRefused(f"consumer group {name!r} has unacknowledged entries before {before}; nothing trimmed")


# -- reading history: the archived part from S3, then Redis ----------------------------------------


def history(store: EventStore, until: str = "+", since: str = "-") -> Iterator[Entry]:
    """Log entries from ``since`` to ``until`` (inclusive), oldest first, the trimmed part read back from S3."""
    point = trim_point(store)
    low = position_key(since) if since != "-" else (0, 0)
    high = position_key(until) if until != "+" else None
    if point is not None:
        before, location = point
        s3 = location.client()
        for segment in read_manifest(location, s3):
            if position_key(segment.first) >= position_key(before) or (high and position_key(segment.first) > high):
                break
            if position_key(segment.last) < low:
                continue
            for entry in read_segment(location, segment, s3):
                at = position_key(entry[0])
                if at >= position_key(before) or (high and at > high):
                    break
                if at >= low:
                    yield entry
        if high and high < position_key(before):
            return
    yield from store.read_chain(after=_before(since) if since != "-" else "0", until=until)


def history_events(store: EventStore, until: str = "+", since: str = "-") -> Iterator[Recorded]:
    """``history`` decoded: the log's events from ``since`` to ``until`` (inclusive), archived part included."""
    for position, envelope, _ in history(store, until, since):
        yield decode(position, envelope)


def raw_batches(
    store: EventStore, after: str = "0", until: str = "+", batch: int = READ_BATCH
) -> Iterator[list[tuple[bytes, dict[bytes, bytes]]]]:
    """``EventStore.read_raw``, except that entries a trim dropped from Redis are read back from the archive.

    A reader already past the newest dropped entry (the live read models: trim catches them up first)
    reads Redis alone, without asking S3.
    """
    dropped: Any = store.redis.hget(store.keys.trim, "dropped")
    if dropped is None or (after not in ("0", "-") and position_key(after) >= position_key(dropped.decode())):
        yield from store.read_raw(after, until, batch)
        return
    ms, seq = position_key(after) if after not in ("0", "-") else (0, -1)
    chunk: list[tuple[bytes, dict[bytes, bytes]]] = []
    for position, envelope, chain in history(store, until, since=f"{ms}-{seq + 1}"):
        chunk.append((position.encode(), {b"e": envelope, b"h": (chain or "").encode()}))
        if len(chunk) == batch:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def event_batches(
    store: EventStore, after: str = "0", until: str = "+", batch: int = READ_BATCH
) -> Iterator[list[Recorded]]:
    """``raw_batches`` decoded: the log's events after ``after`` up to ``until``, archived part included."""
    for entries in raw_batches(store, after, until, batch):
        yield [decode(position.decode(), fields[b"e"]) for position, fields in entries]


def events_after(store: EventStore, after: str = "0", until: str = "+") -> Iterator[Recorded]:
    """``event_batches`` one event at a time, each decoded as it is reached (no batch of them held at once)."""
    for entries in raw_batches(store, after, until):
        for position, fields in entries:
            yield decode(position.decode(), fields[b"e"])


def envelope_batches(store: EventStore, until: str = "+") -> Iterator[list[tuple[bytes, bytes]]]:
    """``EventStore.read_envelopes`` of the whole log, with the archived part first when the log was trimmed."""
    if trim_point(store) is None:
        yield from store.read_envelopes(until=until)
        return
    batch: list[tuple[bytes, bytes]] = []
    for position, envelope, _ in history(store, until):
        batch.append((position.encode(), envelope))
        if len(batch) == 1000:
            yield batch
            batch = []
    if batch:
        yield batch


def replay_batches(store: EventStore, until: str = "+") -> Iterator[list[Recorded]]:
    """``envelope_batches`` decoded: the whole log's events up to ``until``, oldest first, the fastest way."""
    for entries in envelope_batches(store, until):
        yield [decode(position.decode(), envelope) for position, envelope in entries]


def hash_before(store: EventStore, position: str) -> str:
    """The chain hash of the entry just before ``position`` ("" when it is the log's first)."""
    if position_key(position) == (0, 0):
        return ""  # the least position there is: nothing comes before it (and Redis refuses "(0-0" as a bound)
    found: Any = store.redis.xrevrange(store.keys.log, max=f"({position}", min="-", count=1)
    if found:
        return found[0][1][b"h"].decode()
    point = trim_point(store)
    return (_archived_hash_before(point[1], position) or "") if point else ""


def restore_log(
    store: EventStore, location: ArchiveLocation, verifier: LedgerVerifier | None = None
) -> tuple[int, str | None]:
    """Load every archived entry into an empty store, checking checksums and chain (with ``verifier``, the
    segments' signatures and the seals too); returns count and last.

    A restore that finds damage part way removes what it loaded, so a refused restore leaves the store empty.
    """
    ensure_empty(store)
    s3 = location.client()
    segments = read_manifest(location, s3)
    if not segments:
        raise ArchiveMismatch(f"nothing is archived at {location.where}")

    def entries() -> Iterator[Entry]:
        for segment in segments:
            problem = segment.signature_problem(verifier) if verifier is not None else None
            if problem is not None:
                raise DamagedFile(f"the archive is refused: {problem}")
            yield from read_segment(location, segment, s3)

    try:
        where = f"the archive at {location.where}"
        return load_entries(store, entries(), where, check=SealCheck(verifier))
    except BaseException:
        wipe(store)
        raise


# -- verifying --------------------------------------------------------------------------------------


def verify_archive(
    location: ArchiveLocation, verifier: LedgerVerifier | None = None, check: EntryCheck | None = None
) -> ChainReport:
    """Walk the archive's chain segment by segment; a damaged segment is named by its first position.

    With ``verifier``, every segment must be signed by the ledger key; ``check`` sees every entry (the seals).
    """
    s3 = location.client()
    checked, head = 0, ""
    segments = read_manifest(location, s3)
    if not segments:
        raise ArchiveMismatch(f"nothing is archived at {location.where}")
    for segment in segments:
        problem = segment.signature_problem(verifier) if verifier is not None else None
        if problem is not None:
            return ChainReport(checked, segment.first, problem, head)
        try:
            entries = read_segment(location, segment, s3)
        except DamagedFile as exc:
            return ChainReport(checked, segment.first, str(exc), head)
        report = walk(entries, previous=head, check=check)
        if not report.intact:
            return ChainReport(checked + report.checked, report.broken_at, report.reason, report.head)
        checked, head = checked + report.checked, report.head
    return ChainReport(checked, None, None, head)


def verify_log(store: EventStore, check: EntryCheck | None = None) -> tuple[ChainReport, str | None]:
    """Walk the chain of the log in Redis; after a trim, from the archive's hash before its first entry.
    ``check`` sees every entry that links up (the seals' check).

    Returns the report and, when the archive could not be read, a note saying the walk trusted the first
    remaining entry's own hash instead.
    """
    point = trim_point(store)
    if point is None:
        return walk(store.read_chain(), previous="", check=check), None
    before, location = point
    try:
        start = _archived_hash_before(location, before)
        if start is None:
            raise ArchiveMismatch(f"the archive holds nothing before the trim point {before}")
    except (ArchiveUnavailable, ArchiveMismatch, DamagedFile) as exc:
        note = f"the archive could not be read ({exc}); checked from the first entry in Redis, trusting its hash"
        return walk(store.read_chain(), previous=None, check=check), note
    return walk(store.read_chain(), previous=start, check=check), None


def _archived_hash_before(location: ArchiveLocation, position: str) -> str | None:
    """The chain hash of the archived entry just before ``position`` (None when the archive has none older)."""
    s3 = location.client()
    older = [s for s in read_manifest(location, s3) if position_key(s.first) < position_key(position)]
    if not older:
        return None
    if position_key(older[-1].last) < position_key(position):
        return older[-1].chain_out
    entries = [e for e in read_segment(location, older[-1], s3) if position_key(e[0]) < position_key(position)]
    return entries[-1][2] or ""
