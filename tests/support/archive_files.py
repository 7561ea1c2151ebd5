"""Building tar and zip archives in memory for tests, hostile ones included."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]], gz: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def tar_entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, 0o755
    return info


def zip_bytes(entries: list[tuple[str, bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def zeros_tar_gz(gigabytes: int = 1) -> bytes:
    """A tar.gz of one file of ``gigabytes`` GiB of zeros, about 1 MB: gzip members, one 16 MiB chunk repeated."""
    chunk = 16 * 1024 * 1024
    size = gigabytes * 1024 * 1024 * 1024
    info = tar_entry("zeros")
    info.size = size
    zeros = gzip.compress(b"\0" * chunk)
    tail = b"\0" * (1024 + (-size % 512))  # the file's padding, then the end-of-archive blocks
    return gzip.compress(info.tobuf()) + zeros * (size // chunk) + gzip.compress(tail)
