"""S3 depots for the SQL runner: inputs copied into the run folder first; outputs put as one object, or as a
folder of objects that a manifest switches to in one PUT."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from queue_core.specs.pipelines import s3_key

__all__ = ["MANIFEST", "S3Dataset", "s3_dataset"]

# A folder dataset's list of objects. Readers that follow it see the old set of objects or the new one,
# never a mix: a write puts its objects under a fresh prefix first, then replaces this one object.
MANIFEST = "_manifest.json"


def _client(config: dict[str, Any]) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        region_name=config.get("region"),
        endpoint_url=config.get("endpoint_url"),
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=10, read_timeout=60),
    )


def _hidden(relative: str) -> bool:
    """Spark's rule: a path part starting with ``_`` or ``.`` is not data (the manifest, unswitched writes)."""
    return any(part.startswith(("_", ".")) for part in relative.split("/"))


class S3Dataset:
    """One dataset under a depot's prefix: ``KEY.<format>``, or a folder of objects ``KEY/...*.<format>``."""

    def __init__(self, config: dict[str, Any], address: dict[str, Any], fmt: str) -> None:
        self.s3 = _client(config)
        self.bucket = config["bucket"]
        self.key = s3_key(config, address, f".{fmt}")
        self.folder = s3_key(config, address) + "/"
        self.manifest = self.folder + MANIFEST
        self.fmt = fmt

    def _listed(self) -> list[str]:
        keys: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.folder):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return sorted(keys)

    def _manifest_files(self) -> list[str] | None:
        from botocore.exceptions import ClientError

        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=self.manifest)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        return [str(k) for k in json.loads(body)["files"]]

    def folder_files(self) -> list[str]:
        """The folder's data objects: the manifest's list, else every visible ``*.<format>`` under it."""
        listed = self._manifest_files()
        if listed is not None:
            return listed
        return [k for k in self._listed() if k.endswith(f".{self.fmt}") and not _hidden(k[len(self.folder) :])]

    def is_folder(self) -> bool:
        return bool(self.folder_files()) or self._manifest_files() is not None

    def exists(self) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_object(Bucket=self.bucket, Key=self.key)
        except ClientError:
            return self.is_folder()
        return True

    def fetch(self, into: Path) -> list[Path]:
        """Copy the dataset's objects into the folder ``into``; an empty list when there are none."""
        into.mkdir(parents=True, exist_ok=True)
        keys = self.folder_files() or ([self.key] if self.exists() else [])
        paths = []
        for i, key in enumerate(keys):
            path = into / f"part-{i}.{self.fmt}"
            self.s3.download_file(self.bucket, key, str(path))
            paths.append(path)
        return paths

    def put(self, path: Path) -> None:
        """Replace the object with the file: S3 shows readers the old object or the new one, never part of one."""
        self.s3.upload_file(str(path), self.bucket, self.key)

    def put_folder(self, paths: list[Path], mode: str) -> list[str]:
        """Write the files as the folder's new objects (``append``: beside the ones it has); their keys.

        The objects go under a fresh ``_jobledger-<token>/`` prefix, then the manifest is replaced in one
        PUT: that is the switch. After an overwrite, every other object under the folder (the old ones,
        a killed run's unswitched ones, objects written by other tools) is deleted.
        """
        base = self.fresh_prefix()
        keys = []
        for i, path in enumerate(paths):
            key = f"{base}part-{i}.{self.fmt}"
            self.s3.upload_file(str(path), self.bucket, key)
            keys.append(key)
        return self.switch([*self.folder_files(), *keys] if mode == "append" else keys, mode)

    def fresh_prefix(self) -> str:
        """A prefix under the folder no write has used, hidden from readers until a manifest names its objects."""
        return f"{self.folder}_jobledger-{uuid.uuid4().hex[:16]}/"

    def switch(self, files: list[str], mode: str) -> list[str]:
        """Make ``files`` the folder's objects in one PUT of the manifest; after an overwrite, delete every other
        object under the folder."""
        body = json.dumps({"format": self.fmt, "files": files}).encode()
        self.s3.put_object(Bucket=self.bucket, Key=self.manifest, Body=body, ContentType="application/json")
        if mode != "append":
            keep = {*files, self.manifest}
            doomed = [k for k in self._listed() if k not in keep]
            for start in range(0, len(doomed), 1000):
                batch = [{"Key": k} for k in doomed[start : start + 1000]]
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return files


def s3_dataset(depot: dict[str, Any], address: dict[str, Any], fmt: str) -> S3Dataset:
    return S3Dataset(depot["config"], address, fmt)
