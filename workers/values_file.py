"""The attempt's values file: where a job writes the values it publishes, and how the worker reads it safely."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

from queue_core.errors import InvalidInput
from queue_core.specs.task_values import MAX_VALUES_BYTES, check_values

__all__ = ["INVALID_VALUES", "read_values", "values_path"]

INVALID_VALUES = "InvalidValues"  # the reason of an attempt whose values file is too large or not a JSON object
_NAME = ".jobledger-values.json"


def values_path(scratch: Path) -> Path:
    """The file named in ``JOBLEDGER_VALUES_FILE``: in the job's home, the one attempt folder it may write."""
    return scratch / "home" / _NAME


def read_values(scratch: Path) -> dict[str, Any] | str:
    """The values the job wrote (``{}`` when it wrote none), or why they are refused.

    The job owns the folder the file is in, so the file is opened without following a link and read only
    if it is a regular file, at most one byte past the limit: a job cannot make the worker read anything else.
    """
    try:
        fd = os.open(values_path(scratch), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        return (
            "the values file is a link" if exc.errno == errno.ELOOP else f"cannot read the values file: {exc.strerror}"
        )
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "the values file is not a regular file"
        data = os.read(fd, MAX_VALUES_BYTES + 1)
    finally:
        os.close(fd)
    try:
        return check_values(data, "the values file")
    except InvalidInput as exc:
        return str(exc)
