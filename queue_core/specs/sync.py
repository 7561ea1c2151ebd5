"""DATA_SYNC jobs: a dataset copied from a source depot to a target depot, whole or past a watermark column.

A sync is run by the SQL runner as a one-step pipeline (``SELECT * FROM source``, filtered past the last
watermark when incremental), so every pair of depots the pipelines read and write works, with the same
save modes and the same lineage. ``sync_pipeline`` builds that pipeline once the depots' types are known.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from queue_core.errors import InvalidInput
from queue_core.specs import checks
from queue_core.specs.depots import FILE_DEPOTS, check_identifier
from queue_core.specs.pipelines import FILE_FORMATS, SAVE_MODES, normalize_pipeline, parse_address

__all__ = [
    "DEFAULT_FILE_FORMAT",
    "SOURCE_VIEW",
    "SYNCED_VIEW",
    "SYNC_MODES",
    "normalize_sync",
    "settle_format",
    "sync_depots",
    "sync_pipeline",
]

SYNC_MODES = ("full", "incremental")
SOURCE_VIEW = "source"
SYNCED_VIEW = "synced"
DEFAULT_FILE_FORMAT = "parquet"
# A full sync replaces the target; an incremental one adds the new rows to it.
_DEFAULT_SAVE_MODE = {"full": "overwrite", "incremental": "append"}
_KEYS = {"source", "target", "mode", "watermark"}
_SOURCE_KEYS = {"dataset", "format"}
_TARGET_KEYS = {"dataset", "format", "saveMode"}
# The DuckDB type a watermark was read as (``BIGINT``, ``TIMESTAMP WITH TIME ZONE``, ``DECIMAL(10,2)``): it is
# written into the next sync's SQL, so it is checked to be nothing else.
_TYPE_NAME = re.compile(r"[A-Z][A-Z0-9_ ]{0,40}(\([0-9]{1,2}(, ?[0-9]{1,2})?\))?")


def _format(value: Any, field: str) -> str | None:
    """A file format or ``table``; None (left out): settled by the depot's type when the job runs."""
    if value is None:
        return None
    fmt = checks.choice(value, (*FILE_FORMATS, "table", "bigquery"), field, "format", fold_case=True)
    return "table" if fmt == "bigquery" else fmt


def normalize_sync(raw: Any, field: str = "config.sync") -> dict[str, Any]:
    """The sync section with its defaults, or ``InvalidInput`` naming the first bad field."""
    body = checks.mapping(raw, field)
    checks.no_unknown(body, _KEYS, field)
    mode = checks.choice(body.get("mode", "full"), SYNC_MODES, f"{field}.mode", "sync mode")
    watermark = body.get("watermark")
    if watermark is not None:
        watermark = check_identifier(watermark, f"{field}.watermark", "column name")
    elif mode == "incremental":
        raise InvalidInput("is required for an incremental sync: the column whose new values say a row is new",
                           f"{field}.watermark")  # fmt: skip
    source = checks.mapping(body.get("source"), f"{field}.source")
    checks.no_unknown(source, _SOURCE_KEYS, f"{field}.source")
    target = checks.mapping(body.get("target"), f"{field}.target")
    checks.no_unknown(target, _TARGET_KEYS, f"{field}.target")
    save_mode = target.get("saveMode", _DEFAULT_SAVE_MODE[mode])
    out: dict[str, Any] = {
        "source": {
            "dataset": parse_address(source.get("dataset"), f"{field}.source.dataset")["address"],
            "format": _format(source.get("format"), f"{field}.source.format"),
        },
        "target": {
            "dataset": parse_address(target.get("dataset"), f"{field}.target.dataset")["address"],
            "format": _format(target.get("format"), f"{field}.target.format"),
            "saveMode": checks.choice(save_mode, SAVE_MODES.values(), f"{field}.target.saveMode", fold_case=True),
        },
        "mode": mode,
        "watermark": watermark,
    }
    if out["source"]["dataset"] == out["target"]["dataset"]:
        raise InvalidInput("is the source itself", f"{field}.target.dataset")
    return out


def sync_depots(sync: Mapping[str, Any]) -> set[str]:
    """The depots a sync reads and writes."""
    return {parse_address(sync[end]["dataset"], end)["depot"] for end in ("source", "target")}


def settle_format(fmt: str | None, depot_type: str | None, default: str = DEFAULT_FILE_FORMAT) -> str:
    """A dataset's format: as given, else ``table`` in a warehouse depot and ``default`` in a file depot."""
    if fmt is not None:
        return fmt
    return default if depot_type in FILE_DEPOTS or depot_type is None else "table"


def sync_pipeline(
    sync: Mapping[str, Any], depot_types: Mapping[str, str], after: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The normalized pipeline that runs the sync; ``after``: the last watermark ``{"value", "type"}``, whose
    rows and older ones are left out (an incremental sync); None copies every row."""

    def end(name: str) -> tuple[str, str]:
        dataset: str = sync[name]["dataset"]
        depot = parse_address(dataset, name)["depot"]
        return dataset, settle_format(sync[name]["format"], depot_types.get(depot))

    (source, source_format), (target, target_format) = end("source"), end("target")
    query = f'SELECT * FROM "{SOURCE_VIEW}"'
    column = sync["watermark"]
    if after is not None and after.get("value") is not None and sync["mode"] == "incremental":
        if not _TYPE_NAME.fullmatch(str(after["type"])):
            shown = str(after["type"])[:60]
            raise InvalidInput(f"the last watermark's type {shown!r} is not a type name", "config.sync")
        value = str(after["value"]).replace("'", "''")
        query += f" WHERE \"{column}\" > CAST('{value}' AS {after['type']})"
    pipeline = normalize_pipeline(
        {
            "inputs": [{"name": SOURCE_VIEW, "dataset": source, "format": source_format}],
            "steps": [{"sequence": [{"name": SYNCED_VIEW, "sql": query}]}],
            "outputs": [
                {
                    "name": SYNCED_VIEW,
                    "dataset": target,
                    "format": target_format,
                    "options": {"saveMode": sync["target"]["saveMode"]},
                }
            ],
        },
        "config.sync",
    )
    if after is not None and after.get("value") is not None and sync["mode"] == "incremental":
        # A PostgreSQL source sends only the new rows: the runner passes this to its COPY.
        pipeline["inputs"][0]["after"] = {"column": column, "value": str(after["value"])}
    return pipeline
