"""Materializing a job's source into a directory and an entry file the worker can run."""

from __future__ import annotations

from typing import Any

from workers.sources.base import Materialized, SourceContext, SourceError
from workers.sources.workspace import materialize_workspace

__all__ = ["Materialized", "SourceContext", "SourceError", "materialize"]


def materialize(ctx: SourceContext, job: dict[str, Any]) -> Materialized:
    """The job's source on local disk, or ``SourceError``."""
    source = job["source"]
    kind, sdef, location = source["type"], source["sourceDef"], job["sourceLocation"]
    if kind == "WORKSPACE":
        return materialize_workspace(ctx.workspace, sdef, location)
    if kind == "GIT":
        from workers.sources.git import materialize_git

        return materialize_git(ctx, sdef, location)
    if kind == "S3":
        from workers.sources.s3 import materialize_s3

        return materialize_s3(ctx, sdef, location)
    if kind == "RESOURCE":
        from workers.sources.resource import materialize_resource

        return materialize_resource(ctx, sdef, location)
    raise SourceError(f"{kind} sources are not available on this worker")
