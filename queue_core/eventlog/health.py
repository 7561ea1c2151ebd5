"""Store health: what a process checks before it trusts a Redis with the log, and the store's epoch.

A store's **epoch** is the chain hash of its log's first entry, kept in ``jobledger:epoch`` (the append
script sets it with that entry; import and restore set it with the log they load). Every process
remembers the epoch it saw, in memory and, per machine, in ``$JOBLEDGER_HOME/stores/``: a store that
comes back empty (no epoch) or holding another log (another epoch) is refused, rather than silently
started afresh. A machine that never saw the store has nothing to compare with and trusts what it finds.
While an import, a restore or a rebuild holds the store's maintenance marker, no process trusts it at all.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import redis

from queue_core.errors import StoreEpochChanged, StoreUnavailable, UnsafeStore
from queue_core.eventlog.archive import trim_point
from queue_core.eventlog.chain import link
from queue_core.eventlog.connection import unavailable
from queue_core.eventlog.layout import ensure_layout
from queue_core.eventlog.maintenance_mode import check_maintenance
from queue_core.eventlog.store import EventStore
from queue_core.settings import Settings

__all__ = ["check_auth", "check_epoch", "check_log_head", "check_store", "forget_epoch", "record_epoch"]

STORES_DIR = "stores"


def check_store(store: EventStore, settings: Settings, epoch: bool = True, head: bool = False) -> None:
    """Everything a process checks before it runs against the store; raises the reason it must not.

    ``epoch=False`` skips the epoch (for import and restore, which fill a store that came back empty);
    ``head=True`` also checks the log's oldest entry (dispatchers and workers: the system itself runs
    on the log, while commands must still be able to read, verify and export a damaged one).
    """
    try:
        store.check_safe()
        ensure_layout(store)
        if settings.require_auth:
            check_auth(store.redis)
        if head:
            check_log_head(store)
        if epoch:
            check_epoch(store, settings)
    except StoreUnavailable:
        raise
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise unavailable(exc) from exc


def check_auth(connection: redis.Redis) -> None:
    """Refuse a Redis that answers a client that gave no password (its ``default`` user is ``nopass``)."""
    pool: Any = connection.connection_pool
    kwargs = {
        k: v for k, v in pool.connection_kwargs.items() if k not in ("username", "password", "credential_provider")
    }
    anonymous = pool.connection_class(**kwargs)
    try:
        anonymous.connect()
        anonymous.send_command("PING")
        anonymous.read_response()
    except (redis.AuthenticationError, redis.ResponseError):
        return  # NOAUTH (or NOPERM): strangers are kept out
    finally:
        anonymous.disconnect()
    raise UnsafeStore(
        "Redis lets clients in without a password (its default user is nopass) and JOBLEDGER_REQUIRE_AUTH is set: "
        "give the default user a password or turn it off"
    )


def check_log_head(store: EventStore) -> None:
    """Refuse a log whose oldest events were removed by anything but ``jobledger trim`` (a MAXLEN, an XTRIM)."""
    oldest: Any = store.redis.xrange(store.keys.log, count=1)
    if not oldest:
        return
    position, fields = oldest[0]
    chain = fields.get(b"h")
    if chain is None:
        return  # a log written before the hash chain: nothing to check it by
    point = trim_point(store)
    if point is None:
        previous: str | None = ""
    else:
        dropped: Any = store.redis.hget(store.keys.trim, "dropped_chain")
        previous = dropped.decode() if dropped else None  # trims before this field: not checkable
    if previous is not None and link(previous, fields[b"e"]) != chain.decode():
        raise UnsafeStore(
            f"the log's oldest entry {position.decode()} does not follow from its start: events were removed "
            f"from {store.keys.log} by something other than `jobledger trim` (a MAXLEN or XTRIM); refusing to run"
        )


def _record_path(settings: Settings, connection: redis.Redis) -> Path:
    """This machine's record of the epoch of the store ``connection`` reaches (by address, user and db).

    Through Sentinel the address is the primary's name: one record that a failover keeps, as it keeps the log.
    """
    pool: Any = connection.connection_pool
    kwargs: Any = pool.connection_kwargs
    service = getattr(pool, "service_name", None)
    address = f"sentinel:{service}" if service else f"{kwargs.get('host', '')}:{kwargs.get('port', '')}"
    where = kwargs.get("path") or address
    identity = f"{kwargs.get('username') or ''}@{where}/{kwargs.get('db', 0)}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:24]
    return settings.home / STORES_DIR / f"{digest}.epoch"


def _remembered(record: Path) -> str:
    try:
        return record.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return ""


def record_epoch(store: EventStore, settings: Settings) -> None:
    """Remember the store's current epoch on this machine (after an import or restore chose it)."""
    store.learn_epoch()
    if store.epoch:
        _write(_record_path(settings, store.redis), store.epoch)


def forget_epoch(settings: Settings, connection: redis.Redis) -> Path:
    """Forget this machine's record of the epoch of the store ``connection`` reaches: accept it as it is."""
    path = _record_path(settings, connection)
    path.unlink(missing_ok=True)
    return path


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(dir=path.parent, prefix=".epoch-")
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(scratch, path)


def check_epoch(store: EventStore, settings: Settings) -> str:
    """Compare the store's epoch with what this process and this machine knew; returns it.

    A store with a log but no epoch (written before epochs) gets one now, from its oldest entry; never while
    the store is under maintenance (``StoreUnderMaintenance``): an import's half-loaded log is not adopted.
    """
    check_maintenance(store)
    record = _record_path(settings, store.redis)
    store.on_epoch = lambda learned: _write(record, learned)  # a log begun by this process: remember it here too
    found: Any = store.redis.get(store.keys.epoch)
    current = found.decode() if found else ""
    if current and current == store.epoch:
        return current  # what this process knew: the machine's record was checked when it learned it
    remembered = _remembered(record)
    known = store.epoch or remembered
    if not current:
        oldest: Any = store.redis.xrange(store.keys.log, count=1)
        if oldest and b"h" in oldest[0][1]:
            store.redis.set(store.keys.epoch, oldest[0][1][b"h"], nx=True)
            adopted: Any = store.redis.get(store.keys.epoch)
            current = adopted.decode() if adopted else ""
    if known and current != known:
        if not current:
            raise StoreEpochChanged(
                f"the event store is empty, but it held a log (epoch {known[:12]}): Redis came back without its "
                "data; refusing to run. Restore it (jobledger restore or import), or run `jobledger store forget` "
                "if it was emptied on purpose"
            )
        raise StoreEpochChanged(
            f"the event store holds another log (epoch {current[:12]}) than the one known here (epoch {known[:12]}); "
            "refusing to run. Run `jobledger store forget` if the change is intended"
        )
    if current and current != remembered:
        _write(record, current)
    store.epoch = current
    return current
