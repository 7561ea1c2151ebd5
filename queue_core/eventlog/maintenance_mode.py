"""The store's maintenance marker: held by an import, a restore or a rebuild, set first and cleared last.

While the marker is there, the append script refuses every batch (so no check can race the write; a writer
waits a while for the marker to clear, as through an outage, then gives up), and the system's processes
neither write nor trust what they read: a half-loaded log never gets an epoch adopted from it. The
operation's own writes do not go through the append script, so they pass.

The holder renews a short lease beside the marker. When a holder dies its lease lapses: a rebuild left
nothing half done, so its marker is then cleared by whoever finds it; an import or a restore may have left a
partial log, so its marker stays until an operator ends it (``clear``: an abort removes the partial load).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson
import redis

from queue_core.errors import InvalidInput, Remedy, StoreUnderMaintenance
from queue_core.eventlog.renewed_lease import RenewedLease, holder_name
from queue_core.eventlog.store import EventStore
from queue_core.eventlog.transfer import wipe
from queue_core.timefmt import utc_now

__all__ = [
    "MAINTENANCE_LEASE_SECONDS",
    "Marker",
    "check_maintenance",
    "clear_marker",
    "maintenance",
    "read_marker",
]

MAINTENANCE_LEASE_SECONDS = 10.0
OPERATIONS = frozenset({"import", "restore", "rebuild"})
_LEASE_SCRIPT = resources.files("queue_core.eventlog").joinpath("lua", "lease.lua").read_text()
LEAVES_PARTIAL_LOG = frozenset({"import", "restore"})  # a holder that dies may leave a half-loaded log


@dataclass(frozen=True)
class Marker:
    """Who holds the store in maintenance, doing what, since when, and whether its lease is still renewed."""

    operation: str
    holder: str
    since: str
    alive: bool

    def describe(self) -> str:
        """One line: ``store under maintenance: import in progress (...)``, or interrupted."""
        if self.alive:
            return f"store under maintenance: {self.operation} in progress (since {self.since}, by {self.holder})"
        return (
            f"store under maintenance: {self.operation} interrupted (begun {self.since} by {self.holder}, "
            "which stopped renewing its lease)"
        )


def read_marker(store: EventStore) -> Marker | None:
    """The store's maintenance marker, or None when it has none."""
    pipe = store.redis.pipeline(transaction=False)
    pipe.get(store.keys.maintenance)
    pipe.get(store.keys.maintenance_lease)
    raw, lease = pipe.execute()
    return _marker(raw, lease)


def _marker(raw: Any, lease: Any) -> Marker | None:
    if raw is None:
        return None
    try:
        fields = orjson.loads(raw)
        operation, holder, since = str(fields["operation"]), str(fields["holder"]), str(fields["since"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        operation, holder, since = "unknown operation", raw.decode(errors="replace")[:80], "?"
    return Marker(operation, holder, since, alive=lease is not None and lease.decode() == holder)


def check_maintenance(store: EventStore) -> None:
    """Raise ``StoreUnderMaintenance`` while the store is held; a dead rebuild's marker is cleared instead."""
    marker = read_marker(store)
    if marker is None:
        return
    if not marker.alive and marker.operation not in LEAVES_PARTIAL_LOG:
        _clear_if_held_by(store, marker.holder)  # nothing half done: the fleet goes on
        return
    raise _refusal(marker)


def _refusal(marker: Marker) -> StoreUnderMaintenance:
    if marker.alive:
        return StoreUnderMaintenance(f"{marker.describe()}; nothing was written: try again when it ends")
    return StoreUnderMaintenance(f"{marker.describe()}; nothing was written", remedy=Remedy.END_MAINTENANCE)


def _clear_if_held_by(store: EventStore, holder: str) -> bool:
    """Delete the marker if ``holder`` still holds it (another operation may have begun meanwhile)."""
    raw: Any = store.redis.get(store.keys.maintenance)
    marker = _marker(raw, None)
    if marker is None or marker.holder != holder:
        return False
    try:  # deleted only if unchanged since read: the lease script's compare-and-delete
        return bool(store.redis.register_script(_LEASE_SCRIPT)(keys=[store.keys.maintenance], args=[raw, 0]))
    except redis.ResponseError:  # a role that may not write the marker (a worker, the console): the fleet will
        return False


@contextmanager
def maintenance(store: EventStore, operation: str) -> Iterator[str]:
    """Hold the store in maintenance for ``operation`` while the block runs; yields the holder's name.

    The marker is set before anything else and cleared last; the lease beside it is renewed meanwhile.
    ``StoreUnderMaintenance`` when another operation holds it.
    """
    if operation not in OPERATIONS:
        raise InvalidInput(f"no maintenance operation {operation!r}")
    check_maintenance(store)  # a dead rebuild's marker is cleared; anything else held is refused
    holder = holder_name(operation)
    marker = orjson.dumps({"operation": operation, "holder": holder, "since": utc_now()})
    if not store.redis.set(store.keys.maintenance, marker, nx=True):
        raise _refusal(read_marker(store) or Marker(operation, "another process", "now", alive=True))
    lease = RenewedLease(store.redis, store.keys.maintenance_lease, holder, MAINTENANCE_LEASE_SECONDS)
    lease.redis.set(lease.key, holder, px=lease.ttl_ms)  # the marker is this holder's: any lease found was a dead one's
    with lease:
        try:
            yield holder
        finally:
            _clear_if_held_by(store, holder)


def clear_marker(store: EventStore, abort: bool = False) -> tuple[Marker | None, bool]:
    """End a maintenance whose holder died; returns the marker cleared and whether a partial load was removed.

    A partial log (an import or restore that died loading it: a log without an epoch) is kept and refused unless
    ``abort``, which removes every key but the marker, then the marker.
    """
    marker = read_marker(store)
    if marker is None:
        return None, False
    if marker.alive:
        raise StoreUnderMaintenance(f"{marker.describe()}: it is still running, so it is not cleared")
    partial = bool(store.redis.exists(store.keys.log)) and not store.redis.exists(store.keys.epoch)
    if partial and marker.operation in LEAVES_PARTIAL_LOG:
        if not abort:
            raise StoreUnderMaintenance(
                f"{marker.describe()}; it left a partial log, kept until the abort is asked for (it is removed then)"
            )
        wipe(store)
    _clear_if_held_by(store, marker.holder)
    return marker, partial and abort
