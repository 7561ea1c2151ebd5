"""Looking for secret values everywhere they must not be: every Redis key of every type, and files on disk."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import quote

import redis

from queue_core.keys import Keys


def _maybe_inflated(blob: bytes) -> list[bytes]:
    """The value, and its zlib-inflated form when it is one (RQ compresses a job's ``data``)."""
    try:
        return [blob, zlib.decompress(blob)]
    except zlib.error:
        return [blob]


def redis_values(connection: redis.Redis) -> Iterator[tuple[str, bytes]]:
    """``(key, bytes)`` for every name and value of every key except the secret store itself."""
    skip = Keys().secrets.encode()
    for key in connection.scan_iter(count=1000):
        if key == skip:
            continue
        kind = connection.type(key).decode()
        name = key.decode("utf-8", "replace")
        blobs: list[bytes] = [key]
        if kind == "string":
            blobs.append(connection.get(key) or b"")  # type: ignore[arg-type]
        elif kind == "hash":
            for field, value in connection.hgetall(key).items():  # type: ignore[union-attr]
                blobs += [field, value]
        elif kind == "list":
            blobs += connection.lrange(key, 0, -1)  # type: ignore[operator]
        elif kind == "set":
            blobs += list(connection.smembers(key))  # type: ignore[arg-type]
        elif kind == "zset":
            blobs += [member for member, _ in connection.zrange(key, 0, -1, withscores=True)]  # type: ignore[union-attr]
        elif kind == "stream":
            for _id, fields in connection.xrange(key):  # type: ignore[union-attr]
                for field, value in fields.items():
                    blobs += [field, value]
        else:
            raise AssertionError(f"unexpected key type {kind} for {name}")
        for blob in blobs:
            for form in _maybe_inflated(blob):
                yield name, form


def files_under(*roots: Path) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
        elif root.is_dir():
            yield from (p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def assert_nowhere(secrets: Iterable[str], connection: redis.Redis, files: Iterable[Path], texts: Iterable[str] = ()):
    """Fail naming where a secret (or its URL-encoded form) was found."""
    needles = {form.encode() for s in secrets for form in (s, quote(s, safe=""))}
    for key, blob in redis_values(connection):
        for needle in needles:
            assert needle not in blob, f"a secret value is in Redis key {key}"
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"a secret value is in {path}"
    for text in texts:
        for needle in needles:
            assert needle.decode() not in text, "a secret value is in a command's output"
