"""Dataset lineage: which runs wrote a dataset, from which inputs, folded from ``DatasetWritten`` events."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from queue_core.eventlog.events import DatasetWritten, Recorded
from queue_core.specs.pipelines import parse_address

__all__ = ["apply_dataset", "dataset_key", "fingerprint", "written_events"]


def dataset_key(address: str, field: str = "dataset") -> str:
    """The one spelling of a dataset: ``dataos://DEPOT:COLLECTION/DATASET``, without its params."""
    parts = parse_address(address, field)
    return f"dataos://{parts['depot']}:{parts['collection']}/{parts['dataset']}"


def fingerprint(columns: Sequence[Sequence[str]]) -> str:
    """A short, stable hash of a dataset's column names and types."""
    return hashlib.sha256(json.dumps([list(c) for c in columns]).encode()).hexdigest()[:16]


def written_events(result: Mapping[str, Any], attempt: int) -> list[DatasetWritten]:
    """One ``DatasetWritten`` per output a SQL run's result says it wrote."""
    inputs = tuple(dataset_key(a) for a in result.get("inputs", []))
    return [
        DatasetWritten(
            dataset=dataset_key(out["dataset"]),
            format=out["format"],
            save_mode=out["saveMode"],
            rows=out["rows"],
            fingerprint=fingerprint(out.get("columns", [])),
            attempt=attempt,
            inputs=inputs,
        )
        for out in result.get("outputs", [])
        if out.get("written")
    ]


def apply_dataset(doc: dict[str, Any] | None, rec: Recorded) -> dict[str, Any] | None:
    """Fold one write into the dataset's document: every write, oldest first."""
    event = rec.event
    if not isinstance(event, DatasetWritten):
        return doc
    write = {
        "run": rec.aggregate,
        "attempt": event.attempt,
        "time": rec.time,
        "format": event.format,
        "save_mode": event.save_mode,
        "rows": event.rows,
        "fingerprint": event.fingerprint,
        "inputs": list(event.inputs),
    }
    return {"dataset": event.dataset, "writes": [*(doc or {}).get("writes", []), write]}
