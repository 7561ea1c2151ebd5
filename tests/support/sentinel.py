"""A Sentinel deployment for tests: a primary, a replica and three sentinels, real processes on loopback ports.

The sentinels are ``redis-server CONF --sentinel`` with a generated config (Debian ships no ``redis-sentinel``).
With ``password``, the data nodes keep an ACL user ``jobledger`` (clients, replication and the sentinels reach
them as it) and the sentinels ask for the same user and password of their own clients.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.processes import eventually
from tests.support.redis_server import RedisServer, free_port, server_binary

MASTER = "jobledger"
USER = "jobledger"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000


class DataNode(RedisServer):
    """A primary or replica: ``RedisServer`` with the ACL user (if any) and its replication settings."""

    def __init__(self, directory: Path, password: str | None, replica_of: int | None = None) -> None:
        super().__init__(directory)
        self.acl_password = password
        self.replica_of = replica_of

    def client(self, retries: int = 0) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=self.port, retry=Retry(NoBackoff(), retries),
            **({"username": USER, "password": self.acl_password} if self.acl_password else {}),
        )  # fmt: skip

    def start(self, *extra: str) -> None:
        acl: list[str] = []
        if self.acl_password:
            self.directory.mkdir(parents=True, exist_ok=True)
            users = self.directory / "users.acl"
            users.write_text(f"user default off\nuser {USER} on >{self.acl_password} ~* &* +@all\n")
            acl = ["--aclfile", str(users), "--masteruser", USER, "--masterauth", self.acl_password]
        follow = ["--replicaof", "127.0.0.1", str(self.replica_of)] if self.replica_of else []
        # A replica's first sync starts at once (Redis 7.0 waits 5 s for more replicas by default).
        super().start(*acl, *follow, "--repl-diskless-sync-delay", "0", *extra)


class SentinelDeployment:
    """A primary, a replica and three sentinels watching them as ``MASTER``."""

    def __init__(self, directory: Path, password: str | None = None, *options: str) -> None:
        self.directory = directory
        self.password = password
        self.options = options  # more redis-server options for both data nodes
        self.primary = DataNode(directory / "primary", password)
        self.replica = DataNode(directory / "replica", password, replica_of=self.primary.port)
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def addresses(self) -> str:
        """``JOBLEDGER_SENTINELS``."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def start(self) -> None:
        self.primary.start(*self.options)
        self.replica.start(*self.options)
        for index, port in enumerate(self.sentinel_ports):
            folder = self.directory / f"sentinel-{index}"
            folder.mkdir(parents=True, exist_ok=True)
            conf = folder / "sentinel.conf"  # the sentinel rewrites it with what it learns
            lines = [
                f"port {port}", "bind 127.0.0.1", f"dir {folder}", f"logfile {folder / 'sentinel.log'}",
                f"sentinel monitor {MASTER} 127.0.0.1 {self.primary.port} 2",
                f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}",
                f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}",
            ]  # fmt: skip
            if self.password:
                lines += [
                    f"sentinel auth-user {MASTER} {USER}", f"sentinel auth-pass {MASTER} {self.password}",
                    "user default off", f"user {USER} on >{self.password} +@all",
                    f"sentinel sentinel-user {USER}", f"sentinel sentinel-pass {self.password}",
                ]  # fmt: skip
            conf.write_text("\n".join(lines) + "\n")
            process = subprocess.Popen(
                [server_binary(), str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            self.sentinels.append(process)
        eventually(lambda: self.replicas_in_sync() >= 1, what="the replica in sync")
        eventually(lambda: all(self._knows_replica(port) for port in self.sentinel_ports), what="sentinels ready")

    def sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=port, socket_timeout=1, retry=Retry(NoBackoff(), 0),
            **({"username": USER, "password": self.password} if self.password else {}),
        )  # fmt: skip

    def _knows_replica(self, port: int) -> bool:
        try:
            found = self.sentinel(port).sentinel_master(MASTER)
        except redis.RedisError:
            return False
        return int(found["num-slaves"]) >= 1 and int(found["num-other-sentinels"]) >= 2

    def primary_port(self) -> int | None:
        """The primary's port as the first sentinel that answers says."""
        for port in self.sentinel_ports:
            try:
                found = self.sentinel(port).sentinel_get_master_addr_by_name(MASTER)
            except redis.RedisError:
                continue
            return int(found[1])
        return None

    def replicas_in_sync(self) -> int:
        try:
            info = self.primary.client().info("replication")
        except redis.RedisError:
            return 0
        return sum(1 for key, value in info.items() if key.startswith("slave") and value.get("state") == "online")

    def stop(self) -> None:
        for process in self.sentinels:
            process.kill()
            process.wait()
        self.sentinels.clear()
        self.replica.kill()
        self.primary.kill()
