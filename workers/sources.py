"""Materializing a job's source into a directory and an entry file the worker can run."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Materialized", "SourceContext", "SourceError", "cached_tree", "locate", "materialize"]


class SourceError(Exception):
    """Raised when a job's source cannot be had; the attempt ends ``SourceUnavailable``."""


@dataclass(frozen=True)
class Materialized:
    """Where the job runs (its working directory) and the file it runs."""

    cwd: Path
    entry: Path
    revision: str | None = None


@dataclass(frozen=True)
class SourceContext:
    """What materializing needs: the workspace, the cache, a per-attempt folder, resolved secrets."""

    workspace: Path
    cache: Path
    scratch: Path
    secrets: Mapping[str, str] = field(default_factory=dict)
    resources: Any = None  # a queue_core.resources.ResourceStore, for RESOURCE sources


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


def cached_tree(final: Path, build: Callable[[Path], None]) -> bool:
    """Make ``final`` with ``build`` unless it exists; True on a cache hit.

    ``build`` fills a fresh path in a temporary sibling folder, which is renamed into place: two
    workers building the same entry never see a half-built one, and the later rename just loses.
    """
    if final.is_dir():
        return True
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=final.parent))
    try:
        build(staging / "tree")
        try:
            os.rename(staging / "tree", final)
        except OSError:
            if not final.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return False


def locate(cached: Path, scratch: Path, location: str, revision: str) -> Materialized:
    """A working copy of a cached tree in ``scratch`` (jobs must not change the cache) and its entry file."""
    shutil.copytree(cached, scratch, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    root = Path(os.path.realpath(scratch))
    entry = Path(os.path.realpath(root / location))
    if not _inside(root, entry):
        raise SourceError(f"entry file {location!r} leaves the source (path_outside_workspace)")
    if not entry.is_file():
        raise SourceError(f"entry file {location!r} does not exist in the source at {revision}")
    return Materialized(cwd=root, entry=entry, revision=revision)


def materialize(ctx: SourceContext, job: dict[str, Any]) -> Materialized:
    """The job's source on local disk, or ``SourceError``."""
    source = job["source"]
    kind, sdef, location = source["type"], source["sourceDef"], job["sourceLocation"]
    if kind == "WORKSPACE":
        return materialize_workspace(ctx.workspace, sdef, location)
    if kind == "GIT":
        from .git_source import materialize_git

        return materialize_git(ctx, sdef, location)
    if kind == "S3":
        from .s3_source import materialize_s3

        return materialize_s3(ctx, sdef, location)
    if kind == "RESOURCE":
        from .resource_source import materialize_resource

        return materialize_resource(ctx, sdef, location)
    raise SourceError(f"{kind} sources are not available on this worker")
