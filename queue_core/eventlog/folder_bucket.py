"""An archive in a local folder: the few S3 calls the archive makes, answered from files.

An object is a file under the folder (its key the relative path) with its metadata beside it in
``KEY.meta.json``; a missing object is S3's ``NoSuchKey``, so the archive code reads a folder and a bucket
alike. Writes go to a temporary file renamed into place, so a reader never sees half an object.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import orjson

__all__ = ["FolderBucket"]


class FolderBucket:
    """``get_object`` and ``put_object`` of an S3 client, on a folder (the bucket name is ignored)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        path = (self.folder / key).resolve()
        if self.folder.resolve() not in path.parents:
            raise ValueError(f"archive key {key!r} leaves the archive folder")
        return path

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        path = self._path(Key)
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            raise ClientError({"Error": {"Code": "NoSuchKey", "Message": f"{path} is missing"}}, "GetObject") from None
        except OSError as exc:
            raise ClientError({"Error": {"Code": "ReadFailed", "Message": str(exc)}}, "GetObject") from None
        meta = path.with_name(path.name + ".meta.json")
        metadata = orjson.loads(meta.read_bytes()) if meta.exists() else {}
        return {"Body": io.BytesIO(body), "Metadata": metadata}

    def put_object(self, Bucket: str, Key: str, Body: bytes, Metadata: dict[str, str] | None = None) -> None:
        from botocore.exceptions import ClientError

        path = self._path(Key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if Metadata is not None:
                _write(path.with_name(path.name + ".meta.json"), orjson.dumps(Metadata))
            _write(path, Body)
        except OSError as exc:
            raise ClientError({"Error": {"Code": "WriteFailed", "Message": str(exc)}}, "PutObject") from None


def _write(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
