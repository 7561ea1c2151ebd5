"""Row 33: no secret value anywhere but the secret store.

A git token (over HTTPS, and against an unreachable server), S3 keys (a good and a missing object, botocore
at DEBUG) and a secret env var a job echoes: afterwards no value (nor its URL-encoded form) is in any Redis
key of any type, RQ's zlib-compressed job data and its results included, in any process log, in the
output of any command, in the checkout's ``.git/config``, nor on any command line seen in ``/proc`` while
the runs went on. Failure messages stay readable, credential-free.
"""

from __future__ import annotations

import io
import logging
import uuid
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis

from queue_core import Client
from queue_core.masking import install_stdlib_masking, masking
from tests.support.faults import assert_log_holds
from tests.support.git_server import GitHttpsServer, bare_repo, commit_file, push
from tests.support.jobs import source_definition
from tests.support.leaks import assert_nowhere, files_under
from tests.support.processes import Procs, cmdlines_seen
from tests.support.s3 import s3_client
from workers.sources.base import SourceContext
from workers.sources.s3 import materialize_s3

GIT_TOKEN = "ghp_TESTleak9876543210zyxwvuZYXWVU"
AWS_ID = "AKIATESTLEAKID000001"
AWS_KEY = "leakTESTsecretKEY/0123456789+abcdefghij"
ENV_SECRET = "env-secret-Q7w8e9r0t1y2"
SECRETS = {"git-token": GIT_TOKEN, "aws-id": AWS_ID, "aws-key": AWS_KEY, "env-secret": ENV_SECRET}


def _definition(name: str, source: dict[str, Any], location: str, **config: Any) -> dict[str, Any]:
    return source_definition(name, source, location, retries=1, **config)


def test_after_git_s3_and_env_secrets_are_used_no_value_is_anywhere_outside_the_store(
    client: Client, procs: Procs, redis_url: str, s3_endpoint: str, tmp_path: Path
):
    for name, value in SECRETS.items():
        assert procs.cli("secret", "set", name, input=value).returncode == 0
    work, bare = bare_repo(tmp_path / "git")
    commit_file(work, "run.sh", "echo from git\n", "one")
    push(work)
    bucket = f"leak-{uuid.uuid4().hex[:12]}"
    s3 = s3_client(s3_endpoint)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="job.sh", Body=b"echo from s3\n")
    token, keys = (
        {"secret": "git-token"},
        {"accessKeyId": {"secret": "aws-id"}, "secretAccessKey": {"secret": "aws-key"}},
    )
    with GitHttpsServer(bare.parent, "x-access-token", GIT_TOKEN, tmp_path) as server:
        procs.env["GIT_SSL_CAINFO"] = str(server.cert)
        procs.fleet(redis_url)
        definitions = [
            _definition("git-ok", {"type": "GIT", "sourceDef": {"repoUrl": f"{server.base_url}/{bare.name}",
                                                                "token": token}}, "run.sh"),
            _definition("git-down", {"type": "GIT", "sourceDef": {"repoUrl": "https://127.0.0.1:9/x.git",
                                                                  "token": token}}, "run.sh"),
            _definition("s3-keys", {"type": "S3", "sourceDef": {"path": f"s3://{bucket}/job.sh",
                                                               "endpointUrl": s3_endpoint, **keys}}, "job.sh"),
            _definition("s3-missing", {"type": "S3", "sourceDef": {"path": f"s3://{bucket}/none.sh",
                                                                  "endpointUrl": s3_endpoint, **keys}}, "none.sh"),
            _definition("echo-env", {"type": "WORKSPACE", "sourceDef": {"path": ""}}, "echo.sh",
                        envVars={"SECRET": {"secret": "env-secret"}}),
        ]  # fmt: skip
        (client.settings.workspace / "echo.sh").write_text('echo "$SECRET"; echo "x$SECRET" >&2; exit 1\n')
        for raw in definitions:
            client.define(raw)
        with cmdlines_seen(b"git", b"echo.sh", b"job.sh") as seen_cmdlines:  # git's, and the jobs'
            runs = {raw["name"]: client.wait(client.submit(raw["name"]), timeout=60) for raw in definitions}
    assert {name: run["status"] for name, run in runs.items()} == {
        "git-ok": "SUCCEEDED", "git-down": "FAILED", "s3-keys": "SUCCEEDED", "s3-missing": "FAILED",
        "echo-env": "FAILED",
    }  # fmt: skip
    down = client.run_detail(runs["git-down"]["id"])["message"]
    assert down.startswith("git ls-remote failed: ") and "127.0.0.1" in down  # readable, credential-free
    assert [line.line for line in client.logs(runs["echo-env"]["id"]) if line.attempt == 1] == ["***", "x***"]
    outputs = [procs.cli("events", "--json").stdout, procs.cli("runs", "--json").stdout]
    for run in runs.values():
        outputs += [procs.cli(*args).stdout for args in (["status", run["id"]], ["logs", run["id"]])]
    files = list(files_under(tmp_path / "logs", tmp_path / "home"))
    assert any(path.parts[-2:] == (".git", "config") for path in files)  # the checkout's config is looked at too
    assert any(b"git" in c for c in seen_cmdlines), "the sampler saw no git process"
    assert_nowhere(
        SECRETS.values(), client.redis, files, [*outputs, *(c.decode("utf-8", "replace") for c in seen_cmdlines)]
    )
    assert_log_holds(client, [run["id"] for run in runs.values()])


def test_botocore_debug_lines_show_the_access_key_masked(s3_endpoint: str, tmp_path: Path, monkeypatch: Any):
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    bucket = f"debug-{uuid.uuid4().hex[:12]}"
    s3 = s3_client(s3_endpoint)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="job.sh", Body=b"true\n")
    install_stdlib_masking()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    botocore = logging.getLogger("botocore")
    botocore.addHandler(handler)
    botocore.setLevel(logging.DEBUG)
    sdef = {"path": f"s3://{bucket}/job.sh", "endpointUrl": s3_endpoint, "region": "us-east-1",
            "accessKeyId": {"secret": "aws-id"}, "secretAccessKey": {"secret": "aws-key"}}  # fmt: skip
    context = SourceContext(tmp_path / "ws", tmp_path / "cache", tmp_path / "scratch", SECRETS)
    try:
        with masking(SECRETS.values()):
            materialize_s3(context, sdef, "job.sh")
    finally:
        botocore.removeHandler(handler)
        botocore.setLevel(logging.NOTSET)
    text = stream.getvalue()
    assert "Credential=***/" in text  # botocore logs the signed request's Authorization header at DEBUG
    assert AWS_ID not in text and AWS_KEY not in text


@pytest.mark.parametrize("where", ["rq-data", "stream", "zset", "file"])
def test_the_leak_finder_finds_a_planted_value(where: str, connection: redis.Redis, tmp_path: Path):
    planted = tmp_path / "worker.log"
    planted.write_text("nothing here\n")
    if where == "rq-data":
        connection.hset("rq:job:x", "data", zlib.compress(f'["f", null, ["{ENV_SECRET}"], {{}}]'.encode()))
    elif where == "stream":
        connection.xadd("jobledger:runlog:x", {"l": f"token={quote(ENV_SECRET, safe='')}"})
    elif where == "zset":
        connection.zadd("some:index", {ENV_SECRET: 1})
    else:
        planted.write_text(f"error: {ENV_SECRET}\n")
    with pytest.raises(AssertionError, match="a secret value is in"):
        assert_nowhere([ENV_SECRET], connection, [planted])
