"""Nothing at rest holds a secret in any encoding: the AOF, an RDB dump, an export, run logs, the worker's
output, RQ's job hashes and the secret store's own hash, after a real worker ran real jobs using secrets."""

from __future__ import annotations

import base64
import gzip
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from queue_core import Client
from queue_core.keys import Keys
from queue_core.secret_cipher import sealed_key_id
from tests.support.jobs import definition, job_file
from tests.support.leaks import redis_values
from tests.support.processes import Procs
from tests.support.redis_server import RedisServer
from tests.support.secret_forms import file_blobs, find_leaks, leak_forms

SINGLE = "sk-live-" + secrets.token_urlsafe(24)
PEM = "\n".join(
    ["-----BEGIN PRIVATE KEY-----", *(secrets.token_urlsafe(48) for _ in range(4)), "-----END PRIVATE KEY-----", ""]
)
# The job shows each secret, each line of the multi-line one, and their encodings, on stdout and stderr.
LEAKY_JOB = """\
import base64, os, sys
for name in ("SINGLE", "PEM"):
    value = os.environ[name]
    units = [value, *value.splitlines()]
    for unit in units:
        data = unit.encode()
        print(name, unit, base64.b64encode(data).decode(), base64.urlsafe_b64encode(data).decode().rstrip("="))
        print(name, data.hex(), data.hex().upper(), file=sys.stderr)
    print("inside", base64.b64encode(b"prefix-" + value.encode() + b"-suffix").decode())
sys.exit(int(sys.argv[1]))
"""


@pytest.fixture
def server(own_redis: Callable[..., RedisServer]) -> RedisServer:
    """This test's own store: AOF on, and RDB strings uncompressed, so a grep of the dump means something."""
    return own_redis("store", "--rdbcompression", "no")


@pytest.fixture
def redis_url(server: RedisServer) -> str:
    """Every shared fixture (client, env, procs, fleet, connection) reaches this test's own server."""
    return server.url


def _run_leaky_jobs(client: Client, workspace: Path, procs: Procs, redis_url: str) -> list[str]:
    client.set_secret("single", SINGLE)
    client.set_secret("pem", PEM)
    job_file(workspace, "leaky.py", LEAKY_JOB)
    for name, code in (("leaky-ok", "0"), ("leaky-failing", "3")):
        raw = definition(name, "leaky.py", kind="PYTHON", args=code)
        raw["config"]["envVars"] = {"SINGLE": {"secret": "single"}, "PEM": {"secret": "pem"}}
        client.define(raw)
    procs.fleet(redis_url)
    run_ids = [client.submit("leaky-ok"), client.submit("leaky-failing")]
    outcomes = [client.wait(run_id, timeout=60)["status"] for run_id in run_ids]
    assert outcomes == ["SUCCEEDED", "FAILED"]
    return run_ids


def test_no_secret_value_line_or_encoding_is_at_rest_or_in_any_output(
    client: Client, workspace: Path, procs: Procs, redis_url: str, server: RedisServer, tmp_path: Path
):
    run_ids = _run_leaky_jobs(client, workspace, procs, redis_url)
    forms = leak_forms(SINGLE) | leak_forms(PEM)
    connection = server.client()
    logs = [procs.cli("logs", run_id) for run_id in run_ids]
    assert all(result.returncode == 0 for result in logs)
    assert all("***" in result.stdout for result in logs)  # the job did show its secrets
    exported = tmp_path / "export.jsonl.gz"
    assert procs.cli("export", str(exported)).returncode == 0
    connection.save()
    aof = sorted((server.directory / "appendonlydir").glob("*.aof"))
    assert aof, "the store writes no AOF"
    blobs = [
        *((f"Redis key {key}", blob) for key, blob in redis_values(connection)),  # RQ's job data inflated
        *((f"the secret store field {field!r}", value) for field, value in _secret_hash(connection).items()),
        *file_blobs(*aof, server.directory / "dump.rdb"),
        ("the export", gzip.decompress(exported.read_bytes())),
        *((f"jobledger logs {run_id}", result.stdout.encode()) for run_id, result in zip(run_ids, logs, strict=True)),
        *file_blobs(tmp_path / "logs", tmp_path / "home"),  # the worker's and dispatcher's output, the runs folder
    ]
    assert find_leaks(forms, blobs) == []


def test_each_stored_value_is_sealed_and_names_its_key(client: Client, connection: redis.Redis):
    client.set_secret("single", SINGLE)
    client.set_secret("pem", PEM)
    stored = _secret_hash(connection)
    kid = stored.pop(b"@key").decode()
    assert stored.pop(b"@sealed") == b"1"  # no plaintext value left
    assert set(stored) == {b"single", b"pem"}
    assert {sealed_key_id(value) for value in stored.values()} == {kid}
    assert all(value.startswith(b"jl1:" + kid.encode() + b":") for value in stored.values())
    assert client.secrets.resolve(["single", "pem"]) == {"single": SINGLE, "pem": PEM}


def test_the_key_file_is_created_0600_in_a_0700_folder_and_never_enters_redis(
    client: Client, connection: redis.Redis, server: RedisServer
):
    client.set_secret("single", SINGLE)
    path = client.settings.secret_key_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    key_line = path.read_bytes().strip()
    key = base64.urlsafe_b64decode(key_line)
    connection.save()
    blobs = [(key, blob) for key, blob in redis_values(connection)]
    blobs += [("secrets", b" ".join(_secret_hash(connection).values()))]
    blobs += file_blobs(server.directory)
    needles = [key_line, key, key.hex().encode(), base64.b64encode(key)]
    assert [where for where, blob in blobs for needle in needles if needle in blob] == []


def _secret_hash(connection: redis.Redis) -> dict[bytes, bytes]:
    return connection.hgetall(Keys().secrets)  # type: ignore[return-value]
