"""A client submitting runs in a loop, as a process: each outcome a line in a file (``start N``, then
``ok N RUN_ID`` or ``refused N ERROR``), until a stop file appears.

Each submit is made by a new ``Client``, as each ``jobledger submit`` would be: each checks the store afresh.

``python -m tests.support.submit_loop OUT STOP DEFINITION``; the store from ``REDIS_URL``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import redis

from queue_core import Client, JobledgerError

PAUSE_SECONDS = 0.02  # a user's pace, not a test's timing: nothing is asserted about it


def main(out: Path, stop: Path, definition: str) -> None:
    with out.open("a") as lines:
        number = 0
        while not stop.exists():
            number += 1
            lines.write(f"start {number}\n")
            lines.flush()
            try:
                run_id = Client.from_env().submit(definition)
            except (JobledgerError, redis.RedisError) as exc:
                lines.write(f"refused {number} {type(exc).__name__} {str(exc)[:200]}\n")
            else:
                lines.write(f"ok {number} {run_id}\n")
            lines.flush()
            time.sleep(PAUSE_SECONDS)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
