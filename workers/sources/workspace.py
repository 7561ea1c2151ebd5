"""WORKSPACE sources: a folder and an entry file under the workspace root, symlinks resolved and kept inside."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from workers.sources.base import Materialized, SourceError, inside

__all__ = ["materialize_workspace", "working_copy"]


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


def working_copy(source: Materialized, folder: Path) -> Materialized:
    """``source`` copied into ``folder`` (symlinks kept as links, never followed): a sandboxed job's own copy.

    A workspace source runs in place when unsandboxed; the sandbox shows a job its attempt folder only.
    """
    shutil.copytree(source.cwd, folder, symlinks=True)
    try:
        entry = folder / source.entry.relative_to(source.cwd)
    except ValueError:  # an entry file elsewhere in the workspace: copied beside the folder's files
        entry = folder / f".entry-{source.entry.name}"
        shutil.copy2(source.entry, entry)
    return Materialized(cwd=folder, entry=entry, revision=source.revision)
