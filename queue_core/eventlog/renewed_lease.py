"""A lock held as a short lease that a thread renews while its holder works: a holder that dies frees it in seconds.

A long operation (a rebuild of the read models, an import) must not hold the fleet back for longer than it
lives. Its lock lives ``ttl_seconds`` unless renewed, and is renewed every third of that while the holder
runs; a ``kill -9`` stops the renewing with the process, so the lock is free again within ``ttl_seconds``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from importlib import resources
from types import TracebackType

import redis
import structlog

__all__ = ["RenewedLease", "holder_name"]

log = structlog.get_logger("jobledger.lease")


def holder_name(operation: str) -> str:
    """A holder value unique to this process and this hold, readable by an operator (``host.pid:operation:id``)."""
    return f"{socket.gethostname()}.{os.getpid()}:{operation}:{uuid.uuid4().hex[:8]}"


class RenewedLease:
    """One key held with ``SET NX PX`` by ``holder``, renewed in the background while held."""

    def __init__(self, connection: redis.Redis, key: str, holder: str, ttl_seconds: float) -> None:
        self.redis = connection
        self.key = key
        self.holder = holder
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self._script = connection.register_script(
            resources.files("queue_core.eventlog").joinpath("lua", "lease.lua").read_text()
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> bool:
        """Take the lease if it is free; True when this holder has it."""
        return bool(self.redis.set(self.key, self.holder, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        """Extend the lease; False when it is no longer this holder's (it expired and another took it)."""
        return bool(self._script(keys=[self.key], args=[self.holder, self.ttl_ms]))

    def release(self) -> None:
        """Give the lease up, if it is still this holder's."""
        self._script(keys=[self.key], args=[self.holder, 0])

    def _renewing(self) -> None:
        while not self._stop.wait(self.ttl_ms / 3000):
            try:
                if not self.renew():
                    log.error("lost a lease while holding it (it expired: this process stalled)", key=self.key)
                    return
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("could not renew a lease; trying again", key=self.key, error=str(exc).splitlines()[0])

    def __enter__(self) -> RenewedLease:
        """Renew the (acquired) lease in a background thread until the block ends, then release it."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._renewing, name=f"lease {self.key}", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
            self.release()
