"""S3 sources: one object or every object under a prefix, downloaded with boto3 into a cache by ETag or version."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from queue_core.masking import Masker
from workers.sources.base import Materialized, SourceContext, SourceError, cached_tree, locate

__all__ = ["materialize_s3"]

MAX_OBJECTS = 10_000
_CREDENTIALS = {"accessKeyId": "aws_access_key_id", "secretAccessKey": "aws_secret_access_key"}


def _client(sdef: dict[str, Any], secrets: Mapping[str, str]) -> Any:
    import boto3
    from botocore.config import Config

    kwargs: dict[str, Any] = {}
    for field, argument in (*_CREDENTIALS.items(), ("sessionToken", "aws_session_token")):
        if sdef.get(field):
            kwargs[argument] = secrets[sdef[field]["secret"]]
    # Without secret references, boto3's own chain (environment, profile, instance role) applies.
    return boto3.client(
        "s3",
        region_name=sdef.get("region"),
        endpoint_url=sdef.get("endpointUrl"),
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=10, read_timeout=60),
        **kwargs,
    )


def _relative(key: str, prefix: str) -> PurePosixPath:
    rest = key[len(prefix) :].lstrip("/")
    path = PurePosixPath(rest)
    if not rest or path.is_absolute() or ".." in path.parts or "\x00" in rest:
        raise SourceError(f"object key {key!r} cannot be a file under the prefix (path_outside_workspace)")
    return path


def _listing(s3: Any, bucket: str, key: str) -> tuple[list[tuple[str, PurePosixPath, str]], str]:
    """``(key, local path, etag)`` of each object to fetch, and the revision they make together."""
    from botocore.exceptions import ClientError

    if key and not key.endswith("/"):
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
        else:
            version, etag = head.get("VersionId"), head["ETag"].strip('"')
            revision = f"versionId:{version}" if version and version != "null" else f"etag:{etag}"
            return [(key, PurePosixPath(PurePosixPath(key).name), head["ETag"])], revision
    prefix = key if not key or key.endswith("/") else key + "/"
    found: list[tuple[str, PurePosixPath, str]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if not item["Key"].endswith("/"):
                found.append((item["Key"], _relative(item["Key"], prefix), item["ETag"]))
        if len(found) > MAX_OBJECTS:
            raise SourceError(f"more than {MAX_OBJECTS} objects under s3://{bucket}/{prefix}")
    if not found:
        raise SourceError(f"no object at s3://{bucket}/{key}")
    found.sort()
    digest = hashlib.sha256("\n".join(f"{k}\t{e}" for k, _, e in found).encode()).hexdigest()
    return found, f"sha256:{digest}"


def materialize_s3(ctx: SourceContext, sdef: dict[str, Any], location: str) -> Materialized:
    """The object (or prefix) on local disk, cached by its revision, or ``SourceError``."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, key = sdef["path"].removeprefix("s3://").partition("/")
    masker = Masker(ctx.secrets.values())
    try:
        s3 = _client(sdef, ctx.secrets)
        objects, revision = _listing(s3, bucket, key)
        place = f"{sdef.get('endpointUrl') or ''}|{bucket}|{key}"
        digests = [hashlib.sha256(text.encode()).hexdigest() for text in (place, revision)]
        final = ctx.cache / "s3" / digests[0] / digests[1]

        def build(path: Path) -> None:
            for object_key, relative, _etag in objects:
                dest = path / relative
                dest.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, object_key, str(dest))

        cached_tree(final, build)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise SourceError(
            masker.mask(f"s3://{bucket}/{key}: {error.get('Code', 'error')}: {error.get('Message', exc)}")
        ) from None
    except BotoCoreError as exc:
        raise SourceError(masker.mask(f"s3://{bucket}/{key}: {exc}")) from None
    return locate(final, ctx.scratch, location, revision)
