"""A definition's or workflow's ``trigger``: the datasets or the files whose arrival submits a run, normalized."""

from __future__ import annotations

import fnmatch
from typing import Any

from queue_core.errors import InvalidInput
from queue_core.specs import checks
from queue_core.specs.depots import check_identifier
from queue_core.specs.pipelines import parse_address

__all__ = [
    "DATASETS",
    "FILES",
    "MAX_TRIGGER_DATASETS",
    "MAX_TRIGGER_MINUTES",
    "TRIGGER_MODES",
    "matches_file",
    "normalize_trigger",
    "trigger_depots",
]

DATASETS, FILES = "datasets", "files"
TRIGGER_MODES = ("any", "all")
MAX_TRIGGER_DATASETS = 100
MAX_TRIGGER_MINUTES = 7 * 24 * 60  # a week: a debounce or an interval longer than that is a schedule's job
_DATASET_KEYS = {"datasets", "mode", "debounce"}
_FILE_KEYS = {"files", "minInterval", "waitAfterLastChange"}
_WHERE_KEYS = {"depot", "prefix", "pattern"}


def _minutes(raw: dict[str, Any], key: str, field: str) -> float:
    value = raw.get(key, 0)
    where = f"{field}.{key}"
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_TRIGGER_MINUTES:
        raise InvalidInput(f"must be a number of minutes from 0 to {MAX_TRIGGER_MINUTES}", where)
    return float(value)


def _dataset(value: Any, field: str) -> str:
    parts = parse_address(value, field)
    return f"dataos://{parts['depot']}:{parts['collection']}/{parts['dataset']}"


def normalize_trigger(raw: Any, field: str = "trigger") -> dict[str, Any]:
    """``{"datasets": [...], "mode", "debounce"}`` or ``{"files": {depot, prefix, pattern}, "minInterval",
    "waitAfterLastChange"}`` with defaults filled in, or ``InvalidInput`` naming the field.

    Whether the depots exist is the service's to check (``trigger_depots``): a spec is checked alone.
    """
    spec = dict(checks.mapping(raw, field))
    if (DATASETS in spec) == (FILES in spec):
        raise InvalidInput('must have exactly one of "datasets" and "files"', field)
    if DATASETS in spec:
        checks.no_unknown(spec, _DATASET_KEYS, field)
        listed = checks.non_empty_list(spec[DATASETS], f"{field}.datasets")
        if len(listed) > MAX_TRIGGER_DATASETS:
            raise InvalidInput(f"lists more than {MAX_TRIGGER_DATASETS} datasets", f"{field}.datasets")
        datasets = [_dataset(a, f"{field}.datasets[{i}]") for i, a in enumerate(listed)]
        mode = checks.choice(spec.get("mode", "any"), TRIGGER_MODES, f"{field}.mode", "mode")
        return {
            "kind": DATASETS,
            "datasets": sorted(set(datasets)),
            "mode": mode,
            "debounce": _minutes(spec, "debounce", field),
        }
    checks.no_unknown(spec, _FILE_KEYS, field)
    where = dict(checks.mapping(spec[FILES], f"{field}.files"))
    checks.no_unknown(where, _WHERE_KEYS, f"{field}.files")
    depot = check_identifier(where.get("depot"), f"{field}.files.depot", "depot name")
    prefix = checks.relative_path(where.get("prefix", ""), f"{field}.files.prefix", allow_empty=True)
    pattern = checks.non_empty_string(where.get("pattern", "*"), f"{field}.files.pattern", 200)
    return {
        "kind": FILES,
        "files": {"depot": depot, "prefix": prefix.strip("/"), "pattern": pattern},
        "minInterval": _minutes(spec, "minInterval", field),
        "waitAfterLastChange": _minutes(spec, "waitAfterLastChange", field),
    }


def trigger_depots(trigger: dict[str, Any]) -> list[str]:
    """The depots a normalized trigger reads: each dataset's, or the files' one."""
    if trigger["kind"] == FILES:
        return [trigger["files"]["depot"]]
    return sorted({parse_address(d, "trigger.datasets")["depot"] for d in trigger["datasets"]})


def matches_file(trigger: dict[str, Any], name: str) -> bool:
    """Whether a file (its path below the trigger's prefix) matches the trigger's glob pattern."""
    return fnmatch.fnmatchcase(name, trigger["files"]["pattern"])
