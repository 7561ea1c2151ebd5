"""WORKSPACE sources: a folder and an entry file under the workspace root, symlinks resolved and kept inside."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from workers.sources.base import Materialized, SourceError, inside

__all__ = ["materialize_workspace"]


def materialize_workspace(workspace: Path, source_def: dict[str, Any], location: str) -> Materialized:
    """Resolve ``sourceDef.path`` and ``sourceLocation`` under the workspace root, symlinks included."""
    root = Path(os.path.realpath(workspace))
    base = Path(os.path.realpath(root / source_def.get("path", "")))
    if not inside(root, base):
        raise SourceError(f"source path {source_def.get('path')!r} leaves the workspace (path_outside_workspace)")
    entry = Path(os.path.realpath(base / location))
    if not inside(root, entry):
        raise SourceError(f"entry file {location!r} leaves the workspace (path_outside_workspace)")
    if not base.is_dir():
        raise SourceError(f"source directory {source_def.get('path') or '.'!r} does not exist in the workspace")
    if not entry.is_file():
        raise SourceError(f"entry file {location!r} does not exist in {source_def.get('path') or 'the workspace'}")
    if not os.access(entry, os.R_OK):
        raise SourceError(f"entry file {location!r} is not readable")
    return Materialized(cwd=base, entry=entry)
