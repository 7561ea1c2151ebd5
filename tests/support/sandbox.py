"""Skipping where bubblewrap cannot run, and a worker environment without bubblewrap on its PATH."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from workers.sandbox import probe

_PROBLEM = probe()
needs_bwrap = pytest.mark.skipif(_PROBLEM is not None, reason=f"the sandbox cannot run here: {_PROBLEM}")


def path_without_bwrap(folder: Path) -> str:
    """A PATH on which ``bwrap`` is not found, everything else of the current PATH still is (linked in ``folder``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            target = folder / name
            if name != "bwrap" and not target.exists() and shutil.which(name, path=directory):
                target.symlink_to(Path(directory) / name)
    return str(folder)
