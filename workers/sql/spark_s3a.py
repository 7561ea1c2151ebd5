"""S3 depots on Spark through s3a (the Hadoop AWS connector): objects read and written by Spark itself.

An input's objects (its one object, or the objects its folder's manifest lists) are read by Spark as
``s3a://`` paths. An output is written by Spark as a folder of part files under a fresh ``_jobledger-<token>/``
prefix of the dataset's folder, then switched in by the folder's manifest in one PUT, as the DuckDB runner's
folder outputs are (see workers.sql.s3): readers that follow the manifest see the old objects or the new ones.
The depot's endpoint and region and the worker's AWS credentials are set per bucket on the session's Hadoop
configuration: never in the Spark configuration, a path, the plan or a message.
"""

from __future__ import annotations

import os
from typing import Any

from workers.sql.datasets import PipelineError, Target, jsonable
from workers.sql.s3 import S3Dataset

__all__ = ["S3aDataset", "bucket_options", "s3a_target"]

_PY4J_PREAMBLE = "An error occurred while calling"
_SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
MAX_MESSAGE = 2000


def bucket_options(config: dict[str, Any]) -> dict[str, str]:
    """The Hadoop options s3a reads for the depot's bucket: its endpoint (path-style, as a custom endpoint such
    as MinIO or moto needs), its region, and the worker's AWS credentials when its environment has them (else
    s3a's own chain: instance profile, ...)."""
    prefix = f"fs.s3a.bucket.{config['bucket']}."
    options = {}
    endpoint = config.get("endpoint_url")
    if endpoint:
        options["endpoint"] = endpoint
        options["path.style.access"] = "true"
        options["connection.ssl.enabled"] = "true" if endpoint.startswith("https://") else "false"
    if config.get("region"):
        options["endpoint.region"] = config["region"]
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        options["access.key"], options["secret.key"] = key, secret
        token = os.environ.get("AWS_SESSION_TOKEN")
        if token:
            options["session.token"] = token
        provider = "TemporaryAWSCredentialsProvider" if token else "SimpleAWSCredentialsProvider"
        options["aws.credentials.provider"] = f"org.apache.hadoop.fs.s3a.{provider}"
    return {prefix + name: value for name, value in options.items()}


def said(exc: BaseException) -> str:
    """An error's first telling line (not py4j's preamble), any AWS secret in the environment blanked."""
    lines = [line.strip().lstrip(": ") for line in str(exc).strip().splitlines()]
    lines = [line for line in lines if line and not line.startswith(_PY4J_PREAMBLE)]
    text = lines[0][:MAX_MESSAGE] if lines else type(exc).__name__
    for name in _SECRETS:
        if os.environ.get(name):
            text = text.replace(os.environ[name], "***")
    return text


class S3aDataset(S3Dataset):
    """One dataset of an S3 depot that Spark (``spark``, given once the session is up) reads and writes."""

    def __init__(self, config: dict[str, Any], address: dict[str, Any], fmt: str) -> None:
        super().__init__(config, address, fmt)
        self.address = address["address"]
        self.spark: Any = None

    def uri(self, key: str) -> str:
        return f"s3a://{self.bucket}/{key}"

    def objects(self) -> list[str]:
        """The dataset's data objects: its folder's (by the manifest), else its one object; none if absent."""
        return self.folder_files() or ([self.key] if self.exists() else [])

    def _load(self, keys: list[str]) -> Any:
        reader = self.spark.read.format(self.fmt)
        if self.fmt == "csv":
            reader = reader.option("header", "true").option("inferSchema", "true")
        return reader.load([self.uri(k) for k in keys])

    def write_view(self, view: str, mode: str) -> int:
        """Write Spark's view ``view`` as a new folder of part files, switched in by the manifest; the rows."""
        try:
            kept = self.objects() if mode == "append" else []  # the one object too: it stays part of the data
            base = self.fresh_prefix()
            writer = self.spark.table(view).write.format(self.fmt).mode("errorifexists")
            if self.fmt == "csv":
                writer = writer.option("header", "true")
            writer.save(self.uri(base))
            listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=base).get("Contents", [])
            keys = sorted(o["Key"] for o in listed if o["Key"].endswith(f".{self.fmt}"))
            rows = int(self._load(keys).count()) if keys else 0
            self.switch([*kept, *keys], mode)
            if mode != "append" and self.key not in kept:
                self.s3.delete_object(Bucket=self.bucket, Key=self.key)  # a one-object dataset is a folder now
        except PipelineError:
            raise
        except Exception as exc:  # py4j's, Spark's and botocore's errors have no common root worth importing
            raise PipelineError(f"{self.address}: S3 cannot be written: {said(exc)}") from None
        return rows

    def preview(self, limit: int) -> tuple[list[list[str]], list[list[Any]]]:
        """Columns (as Spark types them) and the first rows of the dataset as it is now."""
        try:
            keys = self.objects()
            if not keys:
                return [], []
            frame = self._load(keys)
            columns = [[f.name, f.dataType.simpleString().upper()] for f in frame.schema.fields]
            return columns, [[jsonable(v) for v in row] for row in frame.limit(limit).collect()]
        except Exception as exc:  # as above
            raise PipelineError(f"{self.address}: written, but cannot be read back: {said(exc)}") from None


def s3a_target(depot: dict[str, Any], address: dict[str, Any], fmt: str, output: bool) -> Target:
    """An S3 dataset Spark reads (its objects as ``s3a://`` paths) or writes itself."""
    dataset = S3aDataset(depot["config"], address, fmt)
    if output:
        return Target(fmt, s3=dataset, s3a=dataset, folder=True)
    try:
        keys = dataset.objects()
    except Exception as exc:  # botocore's errors have no common root worth importing here
        raise PipelineError(f"{address['address']}: S3 cannot be read: {said(exc)}") from None
    if not keys:
        raise PipelineError(f"{address['address']}: no object {dataset.key} or {dataset.folder}*.{fmt}")
    return Target(fmt, files=[dataset.uri(k) for k in keys], s3=dataset, s3a=dataset)
