"""RESOURCE sources: one pinned version of a registered script or archive, cached by its checksum."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from queue_core.domain.resources import revision_of
from queue_core.errors import JobledgerError
from queue_core.specs.resources import is_archive
from workers.sources.archives import extract_archive
from workers.sources.base import Materialized, SourceContext, SourceError, cached_tree, locate

__all__ = ["materialize_resource"]


def materialize_resource(ctx: SourceContext, sdef: dict[str, Any], location: str) -> Materialized:
    """The script (as its file name) or the archive's safely extracted tree, or ``SourceError``."""
    if ctx.resources is None:
        raise SourceError("this worker has no resource store")
    try:
        version = ctx.resources.version(sdef["name"], sdef.get("version"))
    except JobledgerError as exc:
        raise SourceError(str(exc)) from None

    def build(path: Path) -> None:
        try:
            content = ctx.resources.content(version)
        except JobledgerError as exc:
            raise SourceError(str(exc)) from None
        if is_archive(version["kind"]):
            extract_archive(content, version["kind"], path)
        else:
            path.mkdir()
            (path / version["filename"]).write_bytes(content)

    # Scripts are cached with their file name: the same bytes may be registered under two names.
    named = "" if is_archive(version["kind"]) else "-" + hashlib.sha256(version["filename"].encode()).hexdigest()[:16]
    final = ctx.cache / "resources" / (version["checksum"] + named)
    cached_tree(final, build)
    return locate(final, ctx.scratch, location, f"{sdef['name']} {revision_of(version)}")
