"""Keeping an attempt's lease alive from its delivery to its end, whatever the worker is doing meanwhile.

The job's supervision renews the lease while the job runs; before that the worker resolves secrets, sets up
a folder and fetches the source, which can take longer than a lease (a slow GIT or S3 source after a long
wait in the queue). Without renewal then, the reconciler took the attempt for lost and delivered it again
every reconcile period, each duplicate holding a worker through its own fetch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

__all__ = ["LeaseKeeper"]


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
