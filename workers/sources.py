"""Materializing a job's source into a directory and an entry file the worker can run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Materialized", "SourceError", "materialize"]


class SourceError(Exception):
    """Raised when a job's source cannot be had; the attempt ends ``SourceUnavailable``."""


@dataclass(frozen=True)
class Materialized:
    """Where the job runs (its working directory) and the file it runs."""

    cwd: Path
    entry: Path
    revision: str | None = None


def _inside(root: Path, candidate: Path) -> bool:
    return candidate == root or root in candidate.parents


def materialize_workspace(workspace: Path, source_def: dict[str, Any], location: str) -> Materialized:
    """Resolve ``sourceDef.path`` and ``sourceLocation`` under the workspace root, symlinks included."""
    root = Path(os.path.realpath(workspace))
    base = Path(os.path.realpath(root / source_def.get("path", "")))
    if not _inside(root, base):
        raise SourceError(f"source path {source_def.get('path')!r} leaves the workspace (path_outside_workspace)")
    entry = Path(os.path.realpath(base / location))
    if not _inside(root, entry):
        raise SourceError(f"entry file {location!r} leaves the workspace (path_outside_workspace)")
    if not base.is_dir():
        raise SourceError(f"source directory {source_def.get('path') or '.'!r} does not exist in the workspace")
    if not entry.is_file():
        raise SourceError(f"entry file {location!r} does not exist in {source_def.get('path') or 'the workspace'}")
    if not os.access(entry, os.R_OK):
        raise SourceError(f"entry file {location!r} is not readable")
    return Materialized(cwd=base, entry=entry)


def materialize(workspace: Path, job: dict[str, Any]) -> Materialized:
    """The job's source on local disk, or ``SourceError``."""
    source = job["source"]
    if source["type"] == "WORKSPACE":
        return materialize_workspace(workspace, source["sourceDef"], job["sourceLocation"])
    raise SourceError(f"{source['type']} sources are not available on this worker yet")
