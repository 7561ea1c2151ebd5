"""Redis ACL users for jobledger's process roles: the keys, channels and commands each role may use.

Each list below was found by running the role against a real redis-server (``MONITOR``, then the ACL in place
and ``ACL LOG`` empty) and by reading the code paths a short run does not take (retries, rebuilds, RQ's
registries). A Lua script runs with its caller's rights, so a role that calls a script holds the commands
inside it too. Operator verbs (``trim``, ``compact``, ``import``, ``restore``, ``acl --apply``) are no role's:
they run as the operator's own Redis user (the scheduler's compaction pass aside).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from queue_core.keys import Keys

__all__ = ["READ_ONLY_ROLES", "ROLES", "Role", "acl_file", "password_hash", "reads_only", "writes_everything"]

_KEYS = Keys()

# What redis-py and RQ send on connecting: AUTH or HELLO, the db, the client's name and library (7.2+), and
# INFO: RQ reads the server's version, jobledger its maxmemory-policy (an evicting one could drop events).
CONNECT = ("auth", "hello", "ping", "select", "client|setname", "client|setinfo", "info")

# Reading the log, aggregates, read models, run logs, leases, secrets (values sealed) and RQ's registries.
READ = (
    *("get", "mget", "exists", "type", "ttl", "pttl"),
    *("xrange", "xrevrange", "xlen", "xread", "xinfo|stream", "xinfo|groups", "xinfo|consumers", "xpending"),
    *("hget", "hmget", "hgetall", "hkeys", "hlen", "hexists", "hscan"),
    *("zrange", "zrevrange", "zrangebyscore", "zrevrangebyscore", "zcard", "zcount", "zscore", "zmscore"),
    *("lrange", "llen", "lindex", "lpos", "smembers", "scard", "sismember", "smismember"),
    "time",  # the dispatcher lag metric is measured by Redis's clock
)

# The one Lua append (EVALSHA, loaded once per server) and what it calls: the log, the epoch, the aggregates.
APPEND = ("evalsha", "script|load", "script|exists", "xadd", "rpush", "set")

# Folding the read models (commit.lua), rebuilding them after an upgrade (swap.lua: KEYS and RENAME within
# the read models' own namespace), the rebuild lock and the maintenance marker (leases, renewed), secrets and
# resource blobs outside the log.
FOLD = ("hset", "hdel", "zadd", "zrem", "set", "del", "keys", "rename", "scan", "expire", "pexpire")

# RQ's queues, jobs and registries: what enqueueing (the dispatcher, the timer) and working (RQ's worker) do.
RQ = (
    *("multi", "exec", "discard", "watch", "unwatch"),
    *("lpush", "rpush", "lpop", "rpop", "lrem", "lmove", "blmove", "linsert"),  # linsert: a queue in priority order
    *("sadd", "srem", "zadd", "zrem", "zremrangebyscore", "zpopmin"),
    *("hset", "hsetnx", "hdel", "hincrby", "hincrbyfloat"),
    *("set", "del", "expire", "pexpire", "persist"),
)

# A worker's lease (SET with an expiry, renewed) and its run log (XADD with MAXLEN), and RQ's command channel.
# CLIENT LIST: RQ's worker finds its own address in it on start (it would record "unknown" without it).
WORKER = ("set", "pexpire", "del", "xadd", "incrby", "expire", "subscribe", "unsubscribe", "client|list")

# The dispatcher's consumer group on the log, and the leader and timer locks (SET NX PX, renewed); and its
# compaction, which trims the log once the archive holds what leaves (XTRIM after reading it back).
DISPATCH = (
    *("xreadgroup", "xack", "xautoclaim", "xclaim", "xgroup|create", "xgroup|createconsumer", "xgroup|delconsumer"),
    *("set", "pexpire", "del", "xtrim"),
)

# Redis's own user, off: a connection that names no user can do nothing at all.
DEFAULT_OFF = "user default off resetpass resetkeys resetchannels -@all"

# Read-only roles read with plain commands: EVALSHA of even a read-only script is a write-capable command.
READ_ONLY_ROLES = ("console", "metrics")


@dataclass(frozen=True)
class Role:
    """One ACL user: what it is for, the keys it may read (``%R~``) or read and write (``~``), its channels
    (``&``), and its commands (everything else is denied)."""

    name: str
    purpose: str
    keys: tuple[str, ...]
    channels: tuple[str, ...]
    commands: tuple[str, ...]

    def rules(self, known: Iterable[str] | None = None) -> list[str]:
        """The role's ACL rules (no password); with ``known``, only the commands a server knows."""
        allowed = known if known is None else set(known)
        commands = [c for c in dict.fromkeys(self.commands) if allowed is None or c in allowed]
        return [
            "resetkeys",
            *self.keys,
            "resetchannels",
            *(f"&{channel}" for channel in self.channels),
            "-@all",
            *(f"+{command}" for command in commands),
        ]


def _unique(*groups: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(command for group in groups for command in group))


ROLES = {
    role.name: role
    for role in (
        Role(
            "client",
            "the CLI and the Python Client: define, submit, read, cancel, workflows, schedules, secrets",
            (f"~{_KEYS.everything}", f"%R~{_KEYS.rq_everything}"),
            (),
            _unique(CONNECT, READ, APPEND, FOLD),
        ),
        Role(
            "worker",
            "a fleet's rq worker: claims attempts, appends their outcomes, keeps leases and run logs",
            (
                f"%R~{_KEYS.everything}",
                # The append script's keys (EVALSHA needs them writable; the maintenance marker is only read),
                # the store's layout (recorded by the first process to see it), the attempt's lease and run log.
                *(f"~{key}" for key in (_KEYS.log, _KEYS.epoch, _KEYS.maintenance, _KEYS.aggregates)),
                *(f"~{key}" for key in (_KEYS.layout, _KEYS.leases, _KEYS.run_logs)),
                f"~{_KEYS.rq_everything}",
            ),
            (_KEYS.rq_worker_channels,),
            _unique(CONNECT, READ, APPEND, RQ, WORKER),
        ),
        Role(
            "scheduler",
            "jobledger scheduler: the dispatcher, the schedule timer and maintenance (leases, reconciling)",
            (f"~{_KEYS.everything}", f"~{_KEYS.rq_everything}"),
            (),
            _unique(CONNECT, READ, APPEND, FOLD, RQ, DISPATCH),
        ),
        Role(
            "console",
            "the web console: reads only (it folds no read model: the scheduler keeps them current)",
            (f"%R~{_KEYS.everything}", f"%R~{_KEYS.rq_everything}"),
            (),
            _unique(CONNECT, READ),
        ),
        Role(
            "metrics",
            "jobledger metrics: reads the log and the dispatchers' consumer group",
            (f"%R~{_KEYS.everything}",),
            (),
            _unique(CONNECT, READ),
        ),
    )
}


def password_hash(password: str) -> str:
    """The SHA-256 of a password, as Redis keeps it (``#HASH`` in a rule): the password cannot be read back."""
    return hashlib.sha256(password.encode()).hexdigest()


def acl_file(
    hashes: Mapping[str, str | None], known: Iterable[str] | None = None, disable_default: bool = False
) -> str:
    """An ACL file (Redis's ``aclfile``) with one ``user`` line per role; a role without a hash gets a
    ``#<sha256-of-its-password>`` placeholder, to read, not to load. With ``disable_default``, a last line turns
    Redis's ``default`` user off (else a file that does not name it leaves it on, password-less)."""
    lines = []
    for role in ROLES.values():
        secret = hashes.get(role.name)
        password = f"#{secret}" if secret else "#<sha256-of-its-password>"
        lines.append(" ".join(["user", role.name, "on", password, *role.rules(known)]))
    if disable_default:
        lines.append(DEFAULT_OFF)
    return "\n".join(lines) + "\n"


def reads_only(connection: Any) -> bool:
    """True when ``connection`` reaches Redis as a read-only role's user (which must never write)."""
    username = connection.connection_pool.connection_kwargs.get("username")
    return username in READ_ONLY_ROLES


def writes_everything(connection: Any) -> bool:
    """True when ``connection`` may write every jobledger key: no ACL user, or a role that may (the client,
    the scheduler), as moving the store to a new layout needs."""
    username = connection.connection_pool.connection_kwargs.get("username")
    role = ROLES.get(username) if username else None
    return username is None or (role is not None and f"~{_KEYS.everything}" in role.keys)
