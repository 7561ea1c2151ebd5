"""Zip entries whose mode bits carry permissions but no file type (``ZipFile.writestr``'s) are files."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from workers.sources.archives import Limits, UnsafeArchive, extract_archive


def _zip(entries: dict[str, tuple[bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, (data, mode) in entries.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def test_a_zip_written_by_writestr_extracts(tmp_path: Path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("job.sh", "echo hi\n")  # mode 0o600 and no file type, as Python writes it
    extract_archive(buffer.getvalue(), "zip", tmp_path / "out", Limits())
    assert (tmp_path / "out" / "job.sh").read_text() == "echo hi\n"


def test_permission_bits_alone_and_a_regular_type_extract(tmp_path: Path):
    archive = _zip({"a.txt": (b"a", 0o644), "b.txt": (b"b", stat.S_IFREG | 0o755)})
    extract_archive(archive, "zip", tmp_path / "out", Limits())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt", "b.txt"]


@pytest.mark.parametrize("kind", [stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK])
def test_a_device_or_pipe_entry_is_still_refused(kind: int, tmp_path: Path):
    archive = _zip({"dev": (b"", kind | 0o600)})
    with pytest.raises(UnsafeArchive, match="is a device or a pipe"):
        extract_archive(archive, "zip", tmp_path / "out", Limits())
    assert not (tmp_path / "out").exists()
