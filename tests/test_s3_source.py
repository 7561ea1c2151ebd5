"""S3 sources end to end: moto in server mode, reached from real worker processes through ``endpointUrl``."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from queue_core import Client, InvalidInput
from tests.support.jobs import source_definition
from tests.support.leaks import assert_nowhere, files_under
from tests.support.processes import Procs
from tests.support.runs import run_to_end, stdout_lines
from tests.support.s3 import s3_client

ACCESS_KEY_ID = "AKIATESTSECRETKEY123"
SECRET_ACCESS_KEY = "wJalrTESTSECRETkeyEXAMPLE/abc+def"
NO_AMBIENT_CREDENTIALS = {
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
}

# The fleet's worker: its boto3 chain finds credentials in its environment.
pytestmark = pytest.mark.fleet(
    env={**NO_AMBIENT_CREDENTIALS, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
)


@pytest.fixture(autouse=True)
def no_leak(connection: redis.Redis, tmp_path: Path) -> Iterator[None]:
    yield
    assert_nowhere([SECRET_ACCESS_KEY], connection, files_under(tmp_path / "logs", tmp_path / "home"))


@pytest.fixture
def s3(s3_endpoint: str) -> Any:
    return s3_client(s3_endpoint)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"jobs-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def s3_definition(name: str, path: str, endpoint: str, location: str, **source: Any) -> dict[str, Any]:
    sdef = {"path": path, "region": "us-east-1", "endpointUrl": endpoint, **source}
    return source_definition(name, {"type": "S3", "sourceDef": sdef}, location)


def test_an_s3_object_runs_and_its_etag_or_version_is_recorded(
    client: Client, s3: Any, bucket: str, s3_endpoint: str, fleet: Procs
):
    put = s3.put_object(Bucket=bucket, Key="jobs/report.sh", Body=b"echo report from s3\n")
    client.define(s3_definition("report", f"s3://{bucket}/jobs/report.sh", s3_endpoint, "report.sh"))
    run = run_to_end(client, "report")
    assert run["status"] == "SUCCEEDED", client.run_detail(run["id"])["message"]
    assert stdout_lines(client, run["id"]) == ["report from s3"]
    assert client.run_detail(run["id"])["source_revisions"] == {"1": f"etag:{put['ETag'].strip(chr(34))}"}
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    put = s3.put_object(Bucket=bucket, Key="jobs/report.sh", Body=b"echo report v2\n")
    run = run_to_end(client, "report")
    assert stdout_lines(client, run["id"]) == ["report v2"]
    assert client.run_detail(run["id"])["source_revisions"] == {"1": f"versionId:{put['VersionId']}"}


def test_every_object_under_a_prefix_is_downloaded_and_cached_by_their_etags(
    client: Client, s3: Any, bucket: str, s3_endpoint: str, fleet: Procs, tmp_path: Path
):
    s3.put_object(Bucket=bucket, Key="pkg/main.sh", Body=b'. ./lib/helper.sh\necho "main $(helper)"\n')
    s3.put_object(Bucket=bucket, Key="pkg/lib/helper.sh", Body=b"helper() { echo helped; }\n")
    client.define(s3_definition("pkg", f"s3://{bucket}/pkg/", s3_endpoint, "main.sh"))
    first, second = run_to_end(client, "pkg"), run_to_end(client, "pkg")
    assert stdout_lines(client, first["id"]) == stdout_lines(client, second["id"]) == ["main helped"]
    revisions = [client.run_detail(r["id"])["source_revisions"]["1"] for r in (first, second)]
    assert revisions[0] == revisions[1] and revisions[0].startswith("sha256:")
    assert len([p for p in (tmp_path / "home" / "cache" / "s3").glob("*/*") if p.is_dir()]) == 1


def test_credentials_from_secret_references_are_used_and_never_shown(
    client: Client, s3: Any, bucket: str, s3_endpoint: str, procs: Procs, redis_url: str
):
    procs.env.update(NO_AMBIENT_CREDENTIALS)
    procs.env.pop("AWS_ACCESS_KEY_ID", None)
    procs.env.pop("AWS_SECRET_ACCESS_KEY", None)
    procs.fleet(redis_url)
    s3.put_object(Bucket=bucket, Key="job.sh", Body=b"echo with secret keys\n")
    client.set_secret("aws-id", ACCESS_KEY_ID)
    client.set_secret("aws-key", SECRET_ACCESS_KEY)
    refs = {"accessKeyId": {"secret": "aws-id"}, "secretAccessKey": {"secret": "aws-key"}}
    client.define(s3_definition("keyed", f"s3://{bucket}/job.sh", s3_endpoint, "job.sh", **refs))
    client.define(s3_definition("keyless", f"s3://{bucket}/job.sh", s3_endpoint, "job.sh"))
    run = run_to_end(client, "keyed")
    assert run["status"] == "SUCCEEDED", client.run_detail(run["id"])["message"]
    keyless = run_to_end(client, "keyless")  # no credentials anywhere: boto3's chain finds none
    assert (keyless["status"], keyless["reason"]) == ("FAILED", "SourceUnavailable")
    outputs = [procs.cli(*args).stdout for args in (["status", run["id"]], ["logs", run["id"]], ["events"])]
    assert_nowhere([ACCESS_KEY_ID, SECRET_ACCESS_KEY], client.redis, [], outputs)


@pytest.mark.parametrize(
    ("case", "message"),
    [("missing-bucket", "NoSuchBucket"), ("missing-key", "no object at"), ("missing-file", "entry file 'other.sh'")],
)
def test_a_missing_bucket_key_or_file_is_source_unavailable(
    case: str, message: str, client: Client, s3: Any, bucket: str, s3_endpoint: str, fleet: Procs
):
    s3.put_object(Bucket=bucket, Key="job.sh", Body=b"true\n")
    path, location = {
        "missing-bucket": (f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/job.sh", "job.sh"),
        "missing-key": (f"s3://{bucket}/not/there.sh", "there.sh"),
        "missing-file": (f"s3://{bucket}/job.sh", "other.sh"),
    }[case]
    client.define(s3_definition("missing", path, s3_endpoint, location))
    run = run_to_end(client, "missing")
    assert (run["status"], run["reason"]) == ("FAILED", "SourceUnavailable")
    assert message in client.run_detail(run["id"])["message"]
    assert any(message in line.line for line in client.logs(run["id"]))


@pytest.mark.parametrize(("change", "message"), [
    ({"endpointUrl": "http://user:pw@127.0.0.1:9000"}, "endpointUrl: is not an http(s):// URL without a credential"),
    ({"secretAccessKey": SECRET_ACCESS_KEY}, "a literal secret is not accepted"),
    ({"path": "s3://Bad_Bucket/key"}, "is not an s3://bucket/key address"),
    ({"region": "EU WEST"}, "is not a region name"),
])  # fmt: skip
def test_a_bad_s3_source_is_refused_at_define_and_appends_nothing(
    change: dict[str, Any], message: str, client: Client, s3_endpoint: str
):
    raw = s3_definition("bad", "s3://bucket/job.sh", s3_endpoint, "job.sh")
    raw["config"]["source"]["sourceDef"].update(change)
    with pytest.raises(InvalidInput, match=re.escape(message)) as refused:
        client.define(raw)
    assert SECRET_ACCESS_KEY not in str(refused.value)
    assert client.store.length() == 0
