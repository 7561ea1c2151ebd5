"""The compute side: RQ job functions, the fleet's serializer and worker class, job sources and runners.

The names below load on first use: the SQL runner's child imports sibling modules of this package and
must not pay for RQ and redis, which the attempt machinery imports.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ENTRY_FUNCTION", "AttemptWorker", "JobSerializer", "RefusedJob", "run_attempt"]

_WHERE = {
    "run_attempt": "workers.attempt",
    "ENTRY_FUNCTION": "workers.serializer",
    "JobSerializer": "workers.serializer",
    "RefusedJob": "workers.serializer",
    "AttemptWorker": "workers.worker",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'workers' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
