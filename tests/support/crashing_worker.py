"""``python crashing_worker.py HOOK worker ARGS...``: ``rq worker`` that dies (``os._exit(137)``) at HOOK.

A fault hook of the tests, put into the real worker process before RQ starts, so a crash lands at an
exact point of the code no signal could hit reliably:

- ``after-pop``: right after RQ pops a job off its queue, before the started registry knows it;
- ``before-claim``: once RQ calls the job started, before the worker's claim (``RunStarted``) is appended;
- ``before-success``: after the job's process ended well, before its ``RunSucceeded`` is appended;
- ``after-success``: right after ``RunSucceeded`` is appended, before RQ records the job finished.
"""

from __future__ import annotations

import os
import sys
from typing import Any


def _die() -> None:
    sys.stderr.flush()
    os._exit(137)


def install(hook: str) -> None:
    if hook == "after-pop":
        from rq.queue import Queue

        original_dequeue = Queue.dequeue_any.__func__  # type: ignore[attr-defined]

        def dequeue_any(cls: Any, *args: Any, **kwargs: Any) -> Any:
            popped = original_dequeue(cls, *args, **kwargs)
            if popped is not None:
                _die()
            return popped

        Queue.dequeue_any = classmethod(dequeue_any)  # type: ignore[method-assign,assignment]
        return
    from queue_core.services.lifecycle import RunLifecycle

    if hook == "before-claim":

        def claim(self: RunLifecycle, *args: Any, **kwargs: Any) -> Any:
            _die()

        RunLifecycle.claim = claim  # type: ignore[method-assign]
        return
    original_succeed = RunLifecycle.succeed

    def succeed(self: RunLifecycle, *args: Any, **kwargs: Any) -> bool:
        if hook == "before-success":
            _die()
        recorded = original_succeed(self, *args, **kwargs)
        _die()
        return recorded

    RunLifecycle.succeed = succeed  # type: ignore[method-assign]


if __name__ == "__main__":
    install(sys.argv[1])
    from rq.cli import main

    sys.argv = ["rq", *sys.argv[2:]]
    main()
