"""Running a pipeline in this process as a real run's or a pre-run's SQL runner would: depots looked up, outputs
redirected to scratch for a pre-run (what the worker does before starting the runner)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from queue_core import Client
from queue_core.services.depots import get_depot
from queue_core.specs.pipelines import normalize_pipeline
from queue_core.specs.preruns import scratch_pipeline
from workers.sql.runner import run_pipeline

__all__ = ["run_as"]


def run_as(client: Client, raw: dict[str, Any], run_dir: Path, prerun: str | None = None) -> dict[str, Any]:
    """Run pipeline ``raw`` (a real run's, or pre-run ``prerun``'s) in ``run_dir``; the runner's result."""
    pipeline = normalize_pipeline(raw)
    names = {x["dataset"]["depot"] for x in [*pipeline["inputs"], *pipeline["outputs"]]}
    depots = {name: get_depot(client.store, name) for name in sorted(names)}
    if prerun is not None:
        pipeline, depots = scratch_pipeline(pipeline, depots, prerun)
    run_dir.mkdir(parents=True)
    return run_pipeline({"pipeline": pipeline, "depots": depots, "run_dir": str(run_dir)})
