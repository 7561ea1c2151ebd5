"""What every source shares: its error, what it materializes to, its context, the cache and the entry lookup."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from queue_core.errors import JobledgerError

__all__ = ["Materialized", "SourceContext", "SourceError", "cached_tree", "inside", "locate"]


class SourceError(JobledgerError):
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
    resources: Any = None  # a queue_core.domain.resources.ResourceStore, for RESOURCE sources


def inside(root: Path, candidate: Path) -> bool:
    return candidate == root or root in candidate.parents


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
    if not inside(root, entry):
        raise SourceError(f"entry file {location!r} leaves the source (path_outside_workspace)")
    if not entry.is_file():
        raise SourceError(f"entry file {location!r} does not exist in the source at {revision}")
    return Materialized(cwd=root, entry=entry, revision=revision)
