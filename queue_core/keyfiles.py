"""Key files: created once, 0600 in a 0700 folder owned by this user, and refused when others could read them."""

from __future__ import annotations

import fcntl
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from queue_core.errors import InvalidInput

__all__ = ["UnsafeKeyFile", "private_dir", "read_key", "read_or_create", "write_key"]


class UnsafeKeyFile(InvalidInput):
    """Raised when a key file (or its folder) is readable by others or owned by another user."""


def private_dir(path: Path, refusal: Callable[[str], Exception] | None = None) -> Path:
    """``path`` as a folder only this user can enter: created 0700, or tightened if it is ours.

    One that belongs to another user is refused: ``refusal(message)`` is raised, by default ``UnsafeKeyFile``.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.geteuid():
        message = f"{path} belongs to another user (uid {info.st_uid})"
        raise refusal(message) if refusal is not None else UnsafeKeyFile(message, "key folder")
    if stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(0o700)
    return path


def read_key(path: Path) -> bytes:
    """The bytes of an existing key file; ``UnsafeKeyFile`` when group or others may read it, or it is not ours."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise InvalidInput(f"the key file {path} does not exist", "key file") from None
    except OSError as exc:
        raise InvalidInput(f"the key file {path} cannot be read: {exc.strerror}", "key file") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeKeyFile(f"{path} is not a regular file", "key file")
        if info.st_uid != os.geteuid() and os.geteuid() != 0:
            raise UnsafeKeyFile(f"{path} belongs to another user (uid {info.st_uid})", "key file")
        if stat.S_IMODE(info.st_mode) & 0o077:
            mode = oct(stat.S_IMODE(info.st_mode))[2:]
            raise UnsafeKeyFile(f"{path} is readable by others (mode {mode}): chmod 600 {path}", "key file")
        return handle.read(64 * 1024)


def read_or_create(path: Path, create: Callable[[], bytes]) -> bytes:
    """The key in ``path``; when there is none, ``create()`` written there 0600 (once, across processes)."""
    if path.exists():
        return read_key(path)
    folder = private_dir(path.parent)
    with _locked(folder):
        if path.exists():
            return read_key(path)
        data = create()
        _replace(path, data)
        return data


def write_key(path: Path, data: bytes) -> None:
    """Replace the key file at ``path`` with ``data``, atomically: 0600, in its 0700 folder, under its lock."""
    with _locked(private_dir(path.parent)):
        _replace(path, data)


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """The key folder's lock (a 0600 file in it), held by one process at a time."""
    with os.fdopen(os.open(folder / ".keys.lock", os.O_WRONLY | os.O_CREAT, 0o600), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to a 0600 file beside ``path``, flush it to disk, then rename it over ``path``."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
