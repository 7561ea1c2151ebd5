"""S3 depots for the SQL runner: inputs copied into the run folder first, outputs put whole (one object each)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["S3Dataset", "s3_dataset"]


def _client(config: dict[str, Any]) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        region_name=config.get("region"),
        endpoint_url=config.get("endpoint_url"),
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=10, read_timeout=60),
    )


class S3Dataset:
    """One dataset under a depot's prefix: ``KEY.<format>``, or objects ``KEY/*.<format>`` (a folder)."""

    def __init__(self, config: dict[str, Any], address: dict[str, Any], fmt: str) -> None:
        self.s3 = _client(config)
        self.bucket = config["bucket"]
        parts = [config.get("prefix") or "", "" if address["collection"] == "none" else address["collection"]]
        base = "/".join(p for p in [*parts, address["dataset"]] if p)
        self.key = f"{base}.{fmt}"
        self.folder = f"{base}/"
        self.fmt = fmt

    def _folder_keys(self) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=self.folder)
        return sorted(o["Key"] for o in listed.get("Contents", []) if o["Key"].endswith(f".{self.fmt}"))

    def exists(self) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_object(Bucket=self.bucket, Key=self.key)
        except ClientError:
            return False
        return True

    def fetch(self, into: Path) -> list[Path]:
        """Copy the dataset's objects into the folder ``into``; an empty list when there are none."""
        into.mkdir(parents=True, exist_ok=True)
        keys = self._folder_keys() or ([self.key] if self.exists() else [])
        paths = []
        for i, key in enumerate(keys):
            path = into / f"part-{i}.{self.fmt}"
            self.s3.download_file(self.bucket, key, str(path))
            paths.append(path)
        return paths

    def put(self, path: Path) -> None:
        """Replace the object with the file: S3 shows readers the old object or the new one, never part of one."""
        self.s3.upload_file(str(path), self.bucket, self.key)


def s3_dataset(depot: dict[str, Any], address: dict[str, Any], fmt: str) -> S3Dataset:
    return S3Dataset(depot["config"], address, fmt)
