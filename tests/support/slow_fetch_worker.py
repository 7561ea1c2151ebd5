"""``python slow_fetch_worker.py SECONDS FETCHES worker ARGS...``: ``rq worker`` whose source fetches are slow.

A fault hook of the tests: each time the worker materializes an attempt's source it first notes its pid in
the file FETCHES (one line per fetch: duplicate deliveries show), then takes SECONDS more, as a large GIT
or S3 source on a slow network would.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any


def install(seconds: float, fetches: str) -> None:
    import workers.attempt

    real = workers.attempt.materialize

    def slow(context: Any, job: Any) -> Any:
        with open(fetches, "a") as out:
            out.write(f"{os.getpid()}\n")
        time.sleep(seconds)
        return real(context, job)

    workers.attempt.materialize = slow


if __name__ == "__main__":
    install(float(sys.argv[1]), sys.argv[2])
    from rq.cli import main

    sys.argv = ["rq", *sys.argv[3:]]
    main()
