"""Extracting zip and tar archives safely: every entry is checked before anything is written, or none is."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from workers.sources.base import SourceError

__all__ = ["Limits", "UnsafeArchive", "extract_archive"]

MAX_ENTRIES = 10_000
MAX_TOTAL_BYTES = 512 * 1024 * 1024
MAX_RATIO = 200  # uncompressed bytes per archive byte, checked once the content passes RATIO_FLOOR
RATIO_FLOOR = 1024 * 1024
COPY_CHUNK = 1024 * 1024
MAX_LINK_BYTES = 4096


class UnsafeArchive(SourceError):
    """Raised when an archive has an entry that could write outside its folder, or is a bomb."""


@dataclass(frozen=True)
class Limits:
    """How much an archive may hold."""

    entries: int = MAX_ENTRIES
    total_bytes: int = MAX_TOTAL_BYTES
    ratio: float = MAX_RATIO


def _refuse(name: str, why: str) -> UnsafeArchive:
    shown = name if len(name) <= 200 else name[:200] + "..."
    return UnsafeArchive(f"unsafe_archive: entry {shown!r} {why}; the whole archive is refused")


def _checked_path(name: str) -> PurePosixPath:
    """The entry's path relative to the target, or refused if it is absolute or climbs out."""
    if not name or "\x00" in name or "\\" in name:
        raise _refuse(name, "has an unusable name")
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("~") or (path.parts and ":" in path.parts[0]):
        raise _refuse(name, "is an absolute path")
    if ".." in path.parts:
        raise _refuse(name, "climbs out with '..'")
    return path


def _check_link(name: str, target: str, hard: bool) -> None:
    """A link must point at something inside the target folder (a hard link's target is archive-relative)."""
    link = PurePosixPath(target)
    if not target or link.is_absolute():
        raise _refuse(name, f"is a link to an absolute path {target!r}")
    base = PurePosixPath() if hard else PurePosixPath(name).parent
    depth = 0
    for part in (base / link).parts:
        depth = depth - 1 if part == ".." else depth + (part != ".")
        if depth < 0:
            raise _refuse(name, f"is a link pointing outside the folder ({target!r})")


class _Budget:
    def __init__(self, limits: Limits, archive_size: int) -> None:
        self.limits = limits
        self.archive_size = max(1, archive_size)
        self.entries = 0
        self.total = 0

    def take(self, name: str, size: int) -> None:
        self.entries += 1
        self.total += max(0, size)
        if self.entries > self.limits.entries:
            raise _refuse(name, f"is past the limit of {self.limits.entries} entries")
        if self.total > self.limits.total_bytes:
            raise _refuse(name, f"takes the content past {self.limits.total_bytes} bytes")
        if self.total > RATIO_FLOOR and self.total / self.archive_size > self.limits.ratio:
            raise _refuse(name, f"takes the compression ratio past {self.limits.ratio:g} (an archive bomb)")


def _under_link(path: PurePosixPath, links: set[PurePosixPath]) -> bool:
    return any(parent in links for parent in path.parents)


def _scan_tar(tar: tarfile.TarFile, budget: _Budget) -> None:
    links: set[PurePosixPath] = set()
    for member in tar:
        path = _checked_path(member.name)
        if _under_link(path, links):
            raise _refuse(member.name, "lies under a link")
        if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
            raise _refuse(member.name, "is a device or a pipe")
        if member.issym() or member.islnk():
            _check_link(member.name, member.linkname, hard=member.islnk())
            links.add(path)
        elif not (member.isfile() or member.isdir()):
            raise _refuse(member.name, "is not a file, folder or link")
        budget.take(member.name, member.size)


def _scan_zip(archive: zipfile.ZipFile, budget: _Budget) -> None:
    for info in archive.infolist():
        _checked_path(info.filename)
        budget.take(info.filename, info.file_size)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            if info.file_size > MAX_LINK_BYTES:
                raise _refuse(info.filename, "is a link with an overlong target")
            _check_link(info.filename, archive.read(info).decode("utf-8", "replace"), hard=False)
        elif stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            # Only a file type other than these is refused: ``ZipFile.writestr`` and many zip tools write
            # permission bits alone (no type), which is a regular file.
            raise _refuse(info.filename, "is a device or a pipe")


def _write_zip(archive: zipfile.ZipFile, root: Path, limits: Limits) -> None:
    """Entries written one by one, counting the bytes actually inflated (a size field can lie)."""
    written = 0
    for info in archive.infolist():
        dest = root / _checked_path(info.filename)
        if info.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as src, open(dest, "wb") as out:
            while chunk := src.read(COPY_CHUNK):
                written += len(chunk)
                if written > limits.total_bytes:
                    raise _refuse(info.filename, f"inflates past {limits.total_bytes} bytes")
                out.write(chunk)
        if (info.external_attr >> 16) & stat.S_IXUSR:
            dest.chmod(0o755)


def extract_archive(content: bytes, kind: str, target: Path, limits: Limits | None = None) -> None:
    """Extract a ``zip``, ``tar`` or ``tar.gz`` into ``target`` (which must not exist), or refuse it whole.

    Everything is checked first, then written into a temporary sibling folder that is renamed
    to ``target`` only when the whole archive is out.
    """
    limits = limits or Limits()
    budget = _Budget(limits, len(content))
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".extract-", dir=target.parent))
    try:
        if kind == "zip":
            try:
                with zipfile.ZipFile(io.BytesIO(content)) as archive:
                    _scan_zip(archive, budget)
                    _write_zip(archive, scratch, limits)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
                raise UnsafeArchive(f"not a readable zip archive: {exc}") from exc
        elif kind in ("tar", "tar.gz"):
            mode = "r:gz" if kind == "tar.gz" else "r:"
            try:
                with tarfile.open(fileobj=io.BytesIO(content), mode=mode) as tar:  # type: ignore[call-overload]
                    _scan_tar(tar, budget)
                    # The 'data' filter repeats the checks above in the standard library.
                    tar.extractall(scratch, filter="data")
            except (tarfile.TarError, EOFError, OSError) as exc:  # FilterError is a TarError
                raise UnsafeArchive(f"unsafe_archive or unreadable tar: {exc}") from exc
        else:
            raise SourceError(f"{kind!r} is not an archive kind")
        os.rename(scratch, target)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
