"""Keeping an attempt's lease alive from its delivery to its end, whatever the worker is doing meanwhile.

The job's supervision renews the lease while the job runs; before that the worker resolves secrets, sets up
a folder and fetches the source, which can take longer than a lease (a slow GIT or S3 source after a long
wait in the queue). Without renewal then, the reconciler took the attempt for lost and delivered it again
every reconcile period, each duplicate holding a worker through its own fetch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Protocol

__all__ = ["HeldLeases", "LeaseKeeper", "Stoppable"]


class LeaseKeeper:
    """Calls ``renew`` every ``every`` seconds on a thread of its own, from ``start`` until ``stop``.

    ``stop`` waits for the thread: no renewal lands after it, so a lease released next stays released.
    """

    def __init__(self, renew: Callable[[], object], every: float) -> None:
        self.renew = renew
        self.every = every
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._keep, name="lease-keeper", daemon=True)

    def _keep(self) -> None:
        while not self._stopped.wait(self.every):
            self.renew()

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> LeaseKeeper:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


class Stoppable(Protocol):
    """What keeps a delivered attempt's lease alive until its ``stop`` (a ``LeaseKeeper``, or a chunk's)."""

    def stop(self) -> None: ...


Attempt = tuple[str, int]


class HeldLeases:
    """The leases of several attempts delivered together (an array chunk's children), renewed together every
    ``every`` seconds on one thread, each let go (never renewed again) once its attempt ends."""

    def __init__(self, renew: Callable[[list[Attempt]], object], attempts: Iterable[Attempt], every: float) -> None:
        self.renew = renew
        self._held = set(attempts)
        self._lock = threading.Lock()  # a renewal never brings back a lease let go meanwhile
        self._keeper = LeaseKeeper(self._renew_held, every)

    def _renew_held(self) -> None:
        with self._lock:
            if self._held:
                self.renew(sorted(self._held))

    def start(self) -> HeldLeases:
        self._keeper.start()
        return self

    def let_go(self, attempt: Attempt) -> None:
        with self._lock:
            self._held.discard(attempt)

    def one(self, attempt: Attempt) -> Stoppable:
        """What an attempt's delivery stops before it releases its lease (as it stops its own ``LeaseKeeper``)."""
        return _LetGo(self, attempt)

    def stop(self) -> None:
        self._keeper.stop()


class _LetGo:
    def __init__(self, leases: HeldLeases, attempt: Attempt) -> None:
        self.leases, self.attempt = leases, attempt

    def stop(self) -> None:
        self.leases.let_go(self.attempt)
