"""The S3 archive (moto in server mode): segments with checksums, restore, trim, and history read back after a trim."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import orjson
import pytest
import redis

from queue_core import Client, Settings
from queue_core.eventlog.archive import (
    SEGMENT_COLUMNS,
    ArchiveLocation,
    archive_log,
    read_manifest,
    trim_log,
    trim_point,
)
from queue_core.eventlog.parquet import parquet_bytes, rows_of
from queue_core.readmodels.projections import fold
from tests.support.ledger import append_clusters, ledger_key, public_key_alone, seal
from tests.support.processes import Procs
from tests.support.redis_server import RedisServer, free_port
from tests.support.s3 import s3_client
from tests.support.workload import cli_json, mixed_workload

FAKE_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
SEGMENT = 10


@pytest.fixture
def location(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, procs: Procs) -> ArchiveLocation:
    for name, value in FAKE_AWS.items():
        monkeypatch.setenv(name, value)
    procs.env.update(FAKE_AWS)
    bucket = f"audit-{uuid.uuid4().hex[:12]}"
    s3_client(s3_endpoint).create_bucket(Bucket=bucket)
    return ArchiveLocation(bucket, "ledger/prod", s3_endpoint)


def where(location: ArchiveLocation) -> list[str]:
    assert location.endpoint_url
    return ["--bucket", location.bucket, "--prefix", location.prefix, "--endpoint-url", location.endpoint_url]


def flip_a_byte(location: ArchiveLocation, key: str) -> None:
    """Rewrite one archived object with one byte of its body flipped, keeping its metadata."""
    client = s3_client(location.endpoint_url or "")
    reply = client.get_object(Bucket=location.bucket, Key=key)
    body = bytearray(reply["Body"].read())
    body[len(body) // 2] ^= 0x01
    client.put_object(Bucket=location.bucket, Key=key, Body=bytes(body), Metadata=reply["Metadata"])


def test_archive_uploads_full_closed_segments_with_checksums_and_a_manifest_and_again_adds_only_new_ones(
    client: Client, procs: Procs, location: ArchiveLocation
):
    mixed_workload(client)
    total = client.store.length()
    done = procs.cli("archive", *where(location), "--segment-size", str(SEGMENT))
    assert done.returncode == 0, done.stderr
    segments = read_manifest(location)
    assert len(segments) == (total - 1) // SEGMENT  # full segments, the newest event never among them
    positions = [r.position for r in client.store.read()]
    assert [(s.first, s.last, s.count) for s in segments] == [
        (positions[i], positions[i + SEGMENT - 1], SEGMENT) for i in range(0, len(segments) * SEGMENT, SEGMENT)
    ]
    head = s3_client(location.endpoint_url or "").head_object(Bucket=location.bucket, Key=segments[0].key)
    assert segments[0].key == f"ledger/prod/segments/{positions[0]}-{positions[SEGMENT - 1]}.parquet"
    assert head["Metadata"]["sha256"] == segments[0].sha256 and head["Metadata"]["count"] == str(SEGMENT)
    assert [s.chain_in for s in segments[1:]] == [s.chain_out for s in segments[:-1]]

    again = procs.cli("archive", *where(location), "--segment-size", str(SEGMENT))
    assert again.stdout.startswith("nothing new to archive") and read_manifest(location) == segments
    register_clusters(client, SEGMENT)  # two events each: two more full segments
    assert len(archive_log(client.store, location, SEGMENT)) == 2
    assert procs.cli("verify", *where(location)).stdout.startswith(f"chain intact: {(len(segments) + 2) * SEGMENT}")


def register_clusters(client: Client, count: int) -> None:
    for i in range(count):
        client.create_cluster(f"extra-{i}")


def test_restore_from_the_archive_rebuilds_a_store_that_answers_the_same(
    client: Client, procs: Procs, location: ArchiveLocation, tmp_path: Path, redis_url: str, fresh: RedisServer
):
    runs = mixed_workload(client)
    archive_log(client.store, location, segment_size=1)  # every event but the newest
    client.cancel(runs[0])  # the newest event, not archived; one more so that the cancel is
    client.create_cluster("after")
    archive_log(client.store, location, segment_size=1)
    procs.env["REDIS_URL"] = fresh.url
    done = procs.cli("restore", *where(location))
    assert done.returncode == 0, done.stderr
    copy = Client(settings=Settings(redis_url=fresh.url, home=tmp_path / "h", workspace=tmp_path / "w"))
    assert copy.store.length() == client.store.length() - 1
    for run in runs:
        assert cli_json(fresh.url, "status", run) == cli_json(redis_url, "status", run)
    assert procs.cli("replay", "--verify").stdout.splitlines()[-1] == "identical"
    again = procs.cli("restore", *where(location))
    assert again.returncode == 2 and "already has a log" in again.stderr


def test_a_flipped_byte_in_a_segment_is_named_by_verify_and_refused_by_restore_and_trim(
    client: Client, procs: Procs, location: ArchiveLocation
):
    mixed_workload(client)
    segments = archive_log(client.store, location, SEGMENT)
    flip_a_byte(location, segments[1].key)
    checked = procs.cli("verify", *where(location))
    assert checked.returncode == 1
    assert checked.stdout.startswith(f"chain broken at {segments[1].first}: archive segment {segments[1].key}")
    length = client.store.length()
    refused = procs.cli("trim", "--before", segments[2].first, *where(location))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "damaged" in refused.stderr
    assert client.store.length() == length and trim_point(client.store) is None
    procs.env["REDIS_URL"] = procs.env["REDIS_URL"].replace("/0", "/1")  # an empty database
    refused = procs.cli("restore", *where(location))
    assert refused.returncode == 2 and "damaged" in refused.stderr
    assert redis.Redis.from_url(procs.env["REDIS_URL"]).keys("*") == []


def test_verify_of_an_archive_names_the_event_of_a_segment_forged_with_a_matching_checksum(
    client: Client, procs: Procs, location: ArchiveLocation
):
    mixed_workload(client)
    segments = archive_log(client.store, location, SEGMENT)
    forged = segments[2]
    client_s3 = s3_client(location.endpoint_url or "")
    body = client_s3.get_object(Bucket=location.bucket, Key=forged.key)["Body"].read()
    rows = [dict(zip(SEGMENT_COLUMNS, row, strict=True)) for row in rows_of(body, "*", forged.key)]
    item = rows[3]
    item["envelope"] = item["envelope"].replace('"t":"', '"t":"1999')  # another time, hash left as it was
    data = parquet_bytes(SEGMENT_COLUMNS, rows)
    digest = hashlib.sha256(data).hexdigest()
    head = client_s3.head_object(Bucket=location.bucket, Key=forged.key)
    client_s3.put_object(
        Bucket=location.bucket,
        Key=forged.key,
        Body=data,
        Metadata={**head["Metadata"], "sha256": digest},
    )
    manifest_key = location.key("manifest.json")
    manifest = orjson.loads(client_s3.get_object(Bucket=location.bucket, Key=manifest_key)["Body"].read())
    manifest["segments"][2]["sha256"] = digest
    client_s3.put_object(Bucket=location.bucket, Key=manifest_key, Body=orjson.dumps(manifest))
    checked = procs.cli("verify", *where(location))
    assert checked.returncode == 1
    assert checked.stdout.startswith(f"chain broken at {item['position']}: its content")


def test_trim_refuses_to_drop_what_the_archive_does_not_hold(client: Client, procs: Procs, location: ArchiveLocation):
    mixed_workload(client)
    segments = archive_log(client.store, location, SEGMENT)
    unarchived = [r.position for r in client.store.read()][len(segments) * SEGMENT + 1]
    refused = procs.cli("trim", "--before", unarchived, *where(location))
    assert refused.returncode == 2
    assert refused.stderr == (
        f"jobledger: the archive holds the log up to {segments[-1].last}, not everything before {unarchived}\n"
    )
    assert procs.cli("trim", "--before", unarchived).returncode == 2  # no archive named, none recorded
    client.store.redis.xgroup_create(client.store.keys.log, "dispatchers", id="0")  # a dispatcher behind
    behind = procs.cli("trim", "--before", segments[-1].last, *where(location))
    assert behind.returncode == 2 and "consumer group 'dispatchers' has read only up to 0-0" in behind.stderr
    assert trim_point(client.store) is None and client.verify_chain().intact


def test_after_archive_and_trim_time_travel_replay_and_events_read_the_trimmed_part_from_s3(
    client: Client, procs: Procs, location: ArchiveLocation, tmp_path: Path
):
    runs = mixed_workload(client, rounds=2)
    everything = list(client.store.read())
    inside = everything[len(everything) // 3].position  # a moment inside what the trim drops
    expected = fold({}, (r for r in everything if r.position <= inside))
    statuses = {run: client.get_run(run) for run in runs}
    segments = archive_log(client.store, location, SEGMENT)
    before = segments[-1].last  # the last archived event stays in Redis as well
    done = procs.cli("trim", "--before", before, *where(location))
    assert done.returncode == 0, done.stderr
    assert client.store.length() == len(everything) - (len(segments) * SEGMENT - 1)

    as_of = client.fold_until(inside)
    assert as_of == {m: {k: d for k, d in docs.items() if d is not None} for m, docs in expected.items()}
    assert client.fold_until(everything[-1].position)["runs"] == {
        run: client.lifecycle.load(run)[0] for run in statuses
    }  # and the commands side still loads every run: its trimmed events from their kept copies
    assert client.store.redis.hlen(client.store.keys.kept) == len(segments) * SEGMENT - 1
    assert [r.position for r in client.events()] == [r.position for r in everything]
    exported = tmp_path / "all.jsonl.gz"
    assert procs.cli("export", str(exported)).returncode == 0
    assert procs.cli("verify", str(exported)).stdout.startswith(f"chain intact: {len(everything)} events")
    assert {run: client.get_run(run) for run in runs} == statuses
    listed = client.list_runs(limit=None)
    client.read_models.drop()  # live read models lost after the trim: catching up reads the archive too
    assert client.list_runs(limit=None) == listed
    assert procs.cli("replay", "--verify").stdout.splitlines()[-1] == "identical"
    client.cancel(runs[0])  # appends continue the chain after the trim
    checked = procs.cli("verify")
    assert checked.stdout.splitlines()[0] == f"chain intact: {client.store.length()} events, head {_head(client)}"


def _head(client: Client) -> str:
    return [h for _, _, h in client.store.read_chain()][-1] or ""


def test_verify_after_a_trim_starts_from_the_archive_hash_or_says_it_trusts_the_first_entry(
    client: Client, procs: Procs, location: ArchiveLocation, connection: redis.Redis
):
    mixed_workload(client)
    segments = archive_log(client.store, location, SEGMENT)
    client.read_models.catch_up()
    trim_log(client.store, location, segments[-1].first)  # mid-archive: that segment is kept in Redis too
    assert client.verify_chain().intact
    first = next(client.store.read_chain())
    # An intruder swaps the first remaining entry for another whose hash is self-consistent from nothing.
    [(_, fields)] = connection.xrange(client.store.keys.log, min=first[0], max=first[0])
    envelope = orjson.loads(fields[b"e"])
    envelope["t"] = "2000-01-01T00:00:00.000000Z"
    entries = connection.xrange(client.store.keys.log)
    connection.delete(client.store.keys.log)
    for pos, f in entries:
        if pos.decode() == first[0]:
            f = {b"e": orjson.dumps(envelope), b"h": f[b"h"]}
        connection.xadd(client.store.keys.log, f, id=pos)
    broken = procs.cli("verify")
    assert broken.returncode == 1 and broken.stdout.startswith(f"chain broken at {first[0]}")

    connection.hset(client.store.keys.trim, "endpoint_url", f"http://127.0.0.1:{free_port()}")  # the archive gone
    unreachable = procs.cli("verify", "--json")
    report = orjson.loads(unreachable.stdout)
    assert report["intact"] is True  # the first entry's own hash is trusted now, so the swap goes unseen ...
    assert "trusting its hash" in report["note"]  # ... and the report says so


def test_segments_archived_with_the_ledger_key_verify_with_the_public_key_alone_and_unsigned_ones_are_refused(
    client: Client, settings: Settings, procs: Procs, location: ArchiveLocation, tmp_path: Path
):
    signer = ledger_key(settings)
    append_clusters(client.store, [f"early-{i}" for i in range(SEGMENT)])
    seal(client.store, signer)
    append_clusters(client.store, [f"late-{i}" for i in range(SEGMENT)])
    assert procs.cli("archive", *where(location), "--segment-size", str(SEGMENT)).returncode == 0
    segments = read_manifest(location)
    assert segments and all(s.key_id == signer.key_id and s.signature for s in segments)
    public = public_key_alone(settings, tmp_path / "auditor")
    verified = procs.cli("verify", *where(location), "--public-key", str(public))
    assert verified.returncode == 0 and verified.stdout.startswith("chain intact"), verified.stdout
    assert "sealed through" in verified.stdout

    manifest = orjson.loads(s3_client(location.endpoint_url or "").get_object(
        Bucket=location.bucket, Key=location.key("manifest.json"))["Body"].read())  # fmt: skip
    manifest["segments"][1]["signature"] = ""  # a forger who rewrote the second segment cannot sign it again
    s3_client(location.endpoint_url or "").put_object(
        Bucket=location.bucket, Key=location.key("manifest.json"), Body=orjson.dumps(manifest)
    )
    refused = procs.cli("verify", *where(location), "--public-key", str(public))
    assert refused.returncode == 1
    assert f"chain broken at {segments[1].first}" in refused.stdout and "not signed by the ledger key" in refused.stdout


def test_restore_with_the_public_key_refuses_an_archive_written_without_the_ledger_key_and_leaves_the_store_empty(
    client: Client, settings: Settings, procs: Procs, location: ArchiveLocation, fresh: RedisServer, tmp_path: Path
):
    append_clusters(client.store, [f"c{i}" for i in range(SEGMENT + 1)])
    assert procs.cli("archive", *where(location), "--segment-size", str(SEGMENT)).returncode == 0  # no key yet
    ledger_key(settings)
    public = public_key_alone(settings, tmp_path / "auditor")
    procs.env["REDIS_URL"] = fresh.url
    refused = procs.cli("restore", *where(location), "--public-key", str(public))
    assert refused.returncode == 2 and "not signed by the ledger key" in refused.stderr
    assert fresh.client().dbsize() == 0
    settings.ledger_public_key_path.unlink()
    unchecked = procs.cli("restore", *where(location))  # no public key at all: the chain alone, and said
    assert unchecked.returncode == 0, unchecked.stderr
    assert "seals and signatures are not checked" in unchecked.stdout
