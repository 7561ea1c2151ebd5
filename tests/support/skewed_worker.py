"""``python skewed_worker.py SECONDS worker ARGS...``: ``rq worker`` on a machine whose clock runs SECONDS ahead.

A fault hook of the tests: the wall clock of the worker process (``datetime.now``, ``time.time``) reads the
machine's clock plus SECONDS, as on a machine whose clock is wrong, so every time it stamps (the attempt's
start on the log among them) is off by that much. Durations (``time.monotonic``) and the store's own clock
(Redis ``TIME``, which expires leases) are untouched, as they would be. Installed before anything imports
``datetime``'s class by name.
"""

from __future__ import annotations

import datetime
import sys
import time
from typing import Any


def install(seconds: float) -> None:
    real = datetime.datetime
    ahead = datetime.timedelta(seconds=seconds)

    class _SameClass(type):
        # Objects made by the real class (arithmetic, parsing) still count as datetimes everywhere.
        def __instancecheck__(cls, obj: Any) -> bool:
            return isinstance(obj, real)

        def __subclasscheck__(cls, sub: type) -> bool:
            return issubclass(sub, real)

    class SkewedDatetime(real, metaclass=_SameClass):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return real.now(tz) + ahead

        @classmethod
        def utcnow(cls) -> Any:
            return real.utcnow() + ahead

    wall = time.time
    datetime.datetime = SkewedDatetime  # type: ignore[misc]
    time.time = lambda: wall() + seconds


if __name__ == "__main__":
    install(float(sys.argv[1]))
    from rq.cli import main

    sys.argv = ["rq", *sys.argv[2:]]
    main()
