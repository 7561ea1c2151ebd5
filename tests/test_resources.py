"""Versioned resources: add, list, show, pinning at submission, archives extracted safely or refused whole."""

from __future__ import annotations

import json
import stat
import uuid
from pathlib import Path

import boto3
import pytest

from queue_core import Client, InvalidInput, NotFound, Settings
from tests.support.archive_files import tar_bytes, tar_entry, zip_bytes
from tests.support.jobs import resource_definition
from tests.support.processes import Procs
from tests.support.runs import run_to_end, stdout_lines


def _file(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / "files" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_resource_add_numbers_versions_and_identical_content_makes_none(client: Client, procs: Procs, tmp_path: Path):
    first = procs.cli("resource", "add", "etl", str(_file(tmp_path, "etl.sh", b"echo one\n")), "--json")
    assert first.returncode == 0, first.stderr
    assert (json.loads(first.stdout)["version"], json.loads(first.stdout)["created"]) == (1, True)
    same = procs.cli("resource", "add", "etl", str(_file(tmp_path, "etl.sh", b"echo one\n")))
    assert (same.returncode, same.stdout.strip()) == (0, "etl unchanged: identical to version 1")
    second = json.loads(
        procs.cli("resource", "add", "etl", str(_file(tmp_path, "v2.sh", b"echo 2\n")), "--json").stdout
    )
    assert second["version"] == 2
    shown = json.loads(procs.cli("resource", "show", "etl", "--json").stdout)
    assert [(v["version"], v["kind"], v["filename"], v["size"], v["storage"]) for v in shown["versions"]] == [
        (1, "sh", "etl.sh", 9, "redis"),
        (2, "sh", "v2.sh", 7, "redis"),
    ]
    assert [d["name"] for d in json.loads(procs.cli("resource", "list", "--json").stdout)] == ["etl"]
    added = client.events(type="ResourceAdded")
    assert [rec.event.checksum for rec in added] == [v["checksum"] for v in shown["versions"]]  # type: ignore[attr-defined]
    assert all(b"echo one" not in fields[b"e"] for batch in client.store.read_raw() for _, fields in batch)
    assert "etl" in procs.cli("resource", "list").stdout


@pytest.mark.parametrize(("name", "file", "content", "message"), [
    ("etl", "notes.txt", b"x", "is not one of .sh, .py, .sql, .jar, .hql, .xml, .zip, .tar, .tar.gz"),
    ("etl", "empty.sh", b"", "is empty"),
    ("etl", None, None, "cannot be read"),
    ("bad name", "x.sh", b"x", "'bad name' is not a valid name"),
])  # fmt: skip
def test_resource_add_refuses_bad_input_with_one_line_and_exit_2(
    name: str, file: str | None, content: bytes | None, message: str, client: Client, procs: Procs, tmp_path: Path
):
    path = _file(tmp_path, file, content) if file and content is not None else tmp_path / "missing.sh"
    result = procs.cli("resource", "add", name, str(path))
    assert (result.returncode, result.stderr.count("\n")) == (2, 1), result.stderr
    assert message in result.stderr
    assert client.store.length() == 0


def test_a_run_pins_the_latest_version_at_submission_or_the_one_named(
    client: Client, tmp_path: Path, procs: Procs, redis_url: str
):
    client.add_resource("etl", _file(tmp_path, "etl.sh", b"echo version one\n"))
    client.define(resource_definition("latest", "etl", "etl.sh"))
    client.define(resource_definition("pinned", "etl", "etl.sh", version=1))
    early = client.submit("latest")
    assert client.run_detail(early)["job"]["source"]["sourceDef"] == {"name": "etl", "version": 1}
    client.add_resource("etl", _file(tmp_path, "etl.sh", b"echo version two\n"))
    late, pinned = client.submit("latest"), client.submit("pinned")
    procs.fleet(redis_url)
    outputs = {run_id: stdout_lines(client, client.wait(run_id, timeout=30)["id"]) for run_id in (early, late, pinned)}
    assert outputs == {early: ["version one"], late: ["version two"], pinned: ["version one"]}
    checksum = client.get_resource("etl")["versions"][1]["checksum"]
    assert client.run_detail(late)["source_revisions"] == {"1": f"etl v2 sha256:{checksum}"}
    client.define(resource_definition("too-far", "etl", "etl.sh", version=9))
    with pytest.raises(NotFound, match="has no version 9"):
        client.submit("too-far")
    client.define(resource_definition("unknown", "nothing", "etl.sh"))
    before = client.store.length()
    with pytest.raises(NotFound, match="no resource named 'nothing'"):
        client.submit("unknown")
    assert client.store.length() == before


@pytest.mark.parametrize("kind", ["tar.gz", "zip", "tar"])
def test_an_archive_resource_is_extracted_and_its_entry_file_runs(
    kind: str, client: Client, tmp_path: Path, fleet: Procs
):
    main, helper = b'. bin/lib/helper.sh\necho "main $(helper)"\n', b"helper() { echo helped; }\n"
    if kind == "zip":
        content = zip_bytes(
            [("bin/main.sh", main, stat.S_IFREG | 0o755), ("bin/lib/helper.sh", helper, stat.S_IFREG | 0o644)]
        )
    else:
        content = tar_bytes(
            [(tar_entry("bin/main.sh"), main), (tar_entry("bin/lib/helper.sh"), helper)], gz=kind == "tar.gz"
        )
    client.add_resource("bundle", _file(tmp_path, f"bundle.{kind}", content))
    raw = resource_definition("bundle-job", "bundle", "bin/main.sh")
    client.define(raw)
    run = run_to_end(client, "bundle-job")
    assert run["status"] == "SUCCEEDED", client.run_detail(run["id"])["message"]
    assert stdout_lines(client, run["id"]) == ["main helped"]


def test_resource_content_lives_in_s3_when_a_bucket_is_configured(
    settings: Settings, s3_endpoint: str, tmp_path: Path, procs: Procs, redis_url: str
):
    bucket = f"resources-{uuid.uuid4().hex[:12]}"
    credentials = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    boto3.client("s3", endpoint_url=s3_endpoint, **_lower(credentials)).create_bucket(Bucket=bucket)
    procs.env.update(credentials, JOBLEDGER_RESOURCE_BUCKET=bucket, JOBLEDGER_RESOURCE_ENDPOINT_URL=s3_endpoint)
    added = procs.cli("resource", "add", "remote", str(_file(tmp_path, "remote.py", b"print('from s3 storage')\n")))
    assert added.returncode == 0, added.stderr
    client = Client(settings=settings)
    version = client.get_resource("remote")["versions"][0]
    assert version["storage"] == f"s3://{bucket}/jobledger/resources/{version['checksum']}"
    assert client.redis.keys("jobledger:resource-blob:*") == []
    raw = resource_definition("remote-job", "remote", "remote.py")
    raw["config"]["type"] = "PYTHON"
    client.define(raw)
    procs.fleet(redis_url)
    run = run_to_end(client, "remote-job")
    assert run["status"] == "SUCCEEDED", client.run_detail(run["id"])["message"]
    assert stdout_lines(client, run["id"]) == ["from s3 storage"]


def _lower(credentials: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": credentials["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": credentials["AWS_SECRET_ACCESS_KEY"],
        "region_name": credentials["AWS_DEFAULT_REGION"],
    }


def test_a_resource_source_is_validated_at_define(client: Client):
    with pytest.raises(InvalidInput, match=r"sourceDef\.version: must be a version number"):
        client.define(resource_definition("bad", "etl", "etl.sh", version=0))
    with pytest.raises(InvalidInput, match=r"sourceDef\.name"):
        client.define(resource_definition("bad", "not a name", "etl.sh"))


def _zip_patched(data: bytes, local: int, central: int, value: bytes) -> bytes:
    """``data`` (a one-entry zip) with the two bytes at ``local`` in its local header and ``central`` in its
    central directory entry set to ``value``: what an encrypting or exotic zip tool would have written."""
    patched = bytearray(data)
    patched[local : local + 2] = value
    entry = patched.find(b"PK\x01\x02")
    patched[entry + central : entry + central + 2] = value
    return bytes(patched)


def _corrupt_stream(data: bytes) -> bytes:
    start = 30 + int.from_bytes(data[26:28], "little") + int.from_bytes(data[28:30], "little")
    patched = bytearray(data)
    for i in range(start + 2, start + 12):
        patched[i] ^= 0xFF
    return bytes(patched)


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        (lambda z: _zip_patched(z, 6, 8, b"\x01\x00"), "encrypted"),  # flag bit 0: encrypted
        (lambda z: _zip_patched(z, 8, 10, b"\x09\x00"), "compression method"),  # 9: deflate64
        (_corrupt_stream, "cannot prepare the source"),
    ],
    ids=["encrypted", "unsupported-compression", "corrupt-stream"],
)
def test_an_archive_python_cannot_read_fails_its_attempts_and_retries_end(
    damage, said: str, client: Client, tmp_path: Path, fleet: Procs
):
    script = b"echo never\n" * 200  # long enough that its compressed stream has bytes to damage
    content = damage(zip_bytes([("run.sh", script, stat.S_IFREG | 0o755)]))
    client.add_resource("damaged", _file(tmp_path, "damaged.zip", content))
    raw = resource_definition("damaged-job", "damaged", "run.sh")
    raw["config"]["retryStrategy"] = {"numRetries": 1, "delayBetweenRetries": 0}
    client.define(raw)
    run = run_to_end(client, "damaged-job", timeout=60)
    assert run["status"] == "FAILED"
    assert [(a["status"], a["reason"]) for a in run["attempts"]] == [("FAILED", "SourceUnavailable")] * 2
    assert said in client.run_detail(run["id"])["message"]
