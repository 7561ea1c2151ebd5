"""S3 depots against moto in server mode: folder outputs switched by a manifest, Avro-typed CSV inputs, a pre-run's
scratch prefix."""

from __future__ import annotations

import json
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from queue_core import Client, InvalidInput
from queue_core.services.depots import get_depot
from queue_core.services.prerun_scratch import remove_scratch
from tests.support.jobs import sql_definition, sql_output
from tests.support.paths import EXAMPLES
from tests.support.processes import Procs, eventually
from tests.support.scratch import run_as

PIPELINES = EXAMPLES / "pipelines"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture
def lake(s3_endpoint: str, client: Client, procs: Procs, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    """(an S3 client, a fresh bucket) holding raw/city.csv and its Avro schema; depot ``s3lake`` is raw/."""
    import boto3

    for key, value in {**CREDENTIALS, "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}.items():
        monkeypatch.setenv(key, value)  # define-time checks read S3 from this process
    procs.env.update(CREDENTIALS, AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_CONFIG_FILE="/nonexistent")
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = f"lake-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.upload_file(str(PIPELINES / "depot" / "city.csv"), bucket, "raw/city.csv")
    s3.upload_file(str(PIPELINES / "depot" / "schemas" / "avsc" / "city.avsc"), bucket, "raw/schemas/city.avsc")
    client.add_depot("s3lake", "s3", bucket=bucket, prefix="raw", region="us-east-1", endpoint_url=s3_endpoint)
    return s3, bucket


def job(name: str, sql: str, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> dict[str, Any]:
    return sql_definition(name, [("s", sql)], inputs, outputs, timeout=2)


def folder(mode: str, layout: str | None = "folder") -> dict[str, Any]:
    return sql_output("s", "dataos://s3lake:out/ids", "parquet", mode, **({"layout": layout} if layout else {}))


def keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def manifest(s3: Any, bucket: str) -> list[str]:
    return json.loads(s3.get_object(Bucket=bucket, Key="raw/out/ids/_manifest.json")["Body"].read())["files"]


def read_back(client: Client, what: str = "SELECT * FROM ids ORDER BY ALL") -> list[list[Any]]:
    """The folder as a jobledger run reads it (it follows the manifest)."""
    inputs = [{"name": "ids", "dataset": "dataos://s3lake:out/ids", "format": "parquet"}]
    client.define(job("reader", what, inputs, []))
    run = client.wait(client.submit("reader"), timeout=60)
    assert run["status"] == "SUCCEEDED", client.run_detail(run["id"])["message"]
    return run["result"]["query"]["preview"]


def test_a_folder_output_is_switched_by_its_manifest_and_appends_add_objects(
    lake: tuple[Any, str], client: Client, fleet: Procs
):
    s3, bucket = lake
    s3.put_object(Bucket=bucket, Key="raw/out/ids/old-a.parquet", Body=b"not parquet: replaced, never read")
    for mode, sql in (("overwrite", "SELECT 1 AS id"), ("append", "SELECT 2 AS id"), ("append", "SELECT 3 AS id")):
        client.define(job("ids", sql, [], [folder(mode)]))
        run = client.wait(client.submit("ids"), timeout=60)
        assert run["status"] == "SUCCEEDED", client.run_detail(run["id"])["message"]
        assert run["result"]["outputs"][0]["rows"] == 1
    files = manifest(s3, bucket)
    assert len(files) == 3 and all(k.startswith("raw/out/ids/_jobledger-") for k in files)
    assert keys(s3, bucket, "raw/out/ids/") == sorted([*files, "raw/out/ids/_manifest.json"])  # old-a is gone
    assert read_back(client) == [[1], [2], [3]]
    client.define(job("ids", "SELECT 9 AS id", [], [folder("overwrite", layout=None)]))  # a folder stays one
    assert client.wait(client.submit("ids"), timeout=60)["status"] == "SUCCEEDED"
    assert read_back(client) == [[9]]
    assert len(keys(s3, bucket, "raw/out/ids/")) == 2  # one object and the manifest
    client.define(job("ids", "SELECT 10 AS id", [], [folder("errorIfExists")]))
    refused = client.wait(client.submit("ids"), timeout=60)
    assert "exists and saveMode is errorIfExists" in client.run_detail(refused["id"])["message"]


def test_kill_9_mid_folder_overwrite_leaves_readers_the_previous_objects(
    lake: tuple[Any, str], client: Client, procs: Procs, redis_url: str, settings: Any
):
    s3, bucket = lake
    (worker,) = procs.fleet(redis_url).workers
    client.define(job("ids", "SELECT range AS id FROM range(3)", [], [folder("overwrite")]))
    assert client.wait(client.submit("ids"), timeout=60)["status"] == "SUCCEEDED"
    before = manifest(s3, bucket)
    big = "SELECT range AS id, md5(range::VARCHAR) AS h, md5(h) AS h2 FROM range(30000000)"
    client.define(job("ids", big, [], [folder("overwrite")]))
    run_id = client.submit("ids")
    runs = Path(settings.home) / "runs"
    eventually(lambda: any(runs.glob("*/sql/stage/out/s/.*.tmp")), timeout=60, what="the output being written")
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    assert manifest(s3, bucket) == before
    assert client.get_run(run_id)["status"] in ("RUNNING", "FAILED")
    procs.worker(redis_url)
    assert read_back(client) == [[0], [1], [2]]


def test_an_avro_schema_in_s3_types_a_csv_in_s3_and_is_checked_at_define_time(
    lake: tuple[Any, str], client: Client, fleet: Procs
):
    s3, bucket = lake
    city = {
        "name": "city",
        "dataset": "dataos://s3lake:none/city",
        "format": "csv",
        "schemaPath": "dataos://s3lake:none/schemas/city.avsc",
    }
    out = [
        {"name": "s", "dataset": "dataos://s3lake:out/typed", "format": "parquet", "options": {"saveMode": "overwrite"}}
    ]
    client.define(job("typed", "SELECT * FROM city", [city], out))
    run = client.wait(client.submit("typed"), timeout=60)
    assert run["status"] == "SUCCEEDED", client.run_detail(run["id"])["message"]
    columns = dict(run["result"]["outputs"][0]["columns"])
    assert (columns["zip_code"], columns["population"], columns["city_id"]) == ("INTEGER", "BIGINT", "VARCHAR")
    s3.put_object(Bucket=bucket, Key="raw/schemas/bad.avsc", Body=b'{"type": "enum"}')
    for schema, said in [("bad.avsc", "is not valid Avro"), ("missing.avsc", "cannot be read")]:
        bad = {**city, "schemaPath": f"dataos://s3lake:none/schemas/{schema}"}
        before = client.store.last_position()
        with pytest.raises(InvalidInput, match=said):
            client.define(job("typed2", "SELECT * FROM city", [bad], out))
        assert client.store.last_position() == before
    lines = (PIPELINES / "depot" / "city.csv").read_text().splitlines()
    fields = lines[7].split(",")
    lines[7] = ",".join([fields[0], "1x0", *fields[2:]])  # line 8 of the file: a zip_code that is no int
    s3.put_object(Bucket=bucket, Key="raw/city.csv", Body=("\n".join(lines) + "\n").encode())
    failed = client.wait(client.submit("typed"), timeout=60)
    assert (failed["status"], failed["reason"]) == ("FAILED", "NonZeroExitCode")
    assert "input city: line 8, column zip_code does not fit its schema" in client.run_detail(failed["id"])["message"]


def test_a_prerun_writes_an_s3_output_under_its_scratch_prefix_which_removal_deletes(
    lake: tuple[Any, str], client: Client, tmp_path: Path
):
    s3, bucket = lake
    pipeline = {
        "inputs": [{"name": "city", "dataset": "dataos://s3lake:none/city", "format": "csv"}],
        "steps": [{"sequence": [{"name": "s", "sql": "SELECT * FROM city LIMIT 3"}]}],
        "outputs": [sql_output("s", "dataos://s3lake:out/few", "parquet", "overwrite")],
    }
    run_as(client, pipeline, tmp_path / "real")
    real = keys(s3, bucket, "raw/out/")
    prerun = str(uuid.uuid4())
    written = run_as(client, pipeline, tmp_path / "prerun", prerun)["outputs"][0]
    assert written["rows"] == 3 and written["scratch"] == f"s3://{bucket}/raw/_prerun/{prerun}/out/few"
    assert keys(s3, bucket, f"raw/_prerun/{prerun}/") and keys(s3, bucket, "raw/out/") == real  # real untouched
    remove_scratch(get_depot(client.store, "s3lake"), prerun, lambda secret: None)
    assert keys(s3, bucket, f"raw/_prerun/{prerun}/") == [] and keys(s3, bucket, "raw/out/") == real
