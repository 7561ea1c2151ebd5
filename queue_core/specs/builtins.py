"""BUILTIN and DATA_SYNC jobs: a built-in named ``NAME@VERSION`` with its parameters, and the pipeline each runs.

Both kinds are run by the SQL runner: ``job_pipeline`` turns a normalized job of either kind into the
pipeline it runs, once the depots' types are known (a format left out is settled by its depot's type).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from queue_core.errors import InvalidInput, NotFound
from queue_core.specs import checks
from queue_core.specs.builtin_params import Builtin, check_params, coerce_param
from queue_core.specs.library import LIBRARY
from queue_core.specs.pipelines import normalize_pipeline, parse_address
from queue_core.specs.sync import normalize_sync, settle_format, sync_depots, sync_pipeline

__all__ = [
    "BUILTIN",
    "DATA_SYNC",
    "RUNNER_TYPES",
    "builtin_sync",
    "find_builtin",
    "job_depots",
    "job_pipeline",
    "library",
    "normalize_builtin",
    "params_from_text",
]

BUILTIN = "BUILTIN"
DATA_SYNC = "DATA_SYNC"
# The job types the SQL runner runs (a SQL job, and these two, which it runs as generated pipelines).
RUNNER_TYPES = ("SQL", DATA_SYNC, BUILTIN)
_REF = re.compile(r"^(?P<name>[a-z][a-z0-9-]{0,63})(?:@(?P<version>[1-9][0-9]{0,5}))?$")


def library() -> list[dict[str, Any]]:
    """Every built-in, by name, newest version first, with its parameters."""
    return [LIBRARY[name][v].describe() for name in sorted(LIBRARY) for v in sorted(LIBRARY[name], reverse=True)]


def find_builtin(ref: Any, field: str = "builtin") -> Builtin:
    """The built-in ``NAME`` (its latest version) or ``NAME@VERSION``; ``NotFound`` naming what there is."""
    match = _REF.match(ref) if isinstance(ref, str) else None
    if match is None:
        raise InvalidInput("must be a built-in's name, optionally with @VERSION (jobledger library list)", field)
    versions = LIBRARY.get(match.group("name"))
    if versions is None:
        raise NotFound(f"{field}: no built-in named {match.group('name')!r}; there are {', '.join(sorted(LIBRARY))}")
    version = int(match.group("version") or max(versions))
    if version not in versions:
        have = ", ".join(f"@{v}" for v in sorted(versions))
        raise NotFound(f"{field}: {match.group('name')} has no version {version}; it has {have}")
    return versions[version]


def normalize_builtin(config: Mapping[str, Any], field: str = "config") -> dict[str, Any]:
    """A BUILTIN job's ``builtin`` (pinned to a version: the latest when left out) and its checked ``params``."""
    builtin = find_builtin(config.get("builtin"), f"{field}.builtin")
    params = check_params(builtin, config.get("params"), f"{field}.params")
    kind, section = builtin.build(params)
    if kind == "sync":  # the rules a DATA_SYNC has (a watermark for incremental, ...), said of the parameters
        normalize_sync(section, f"{field}.params")
    return {"builtin": builtin.ref, "params": params}


def params_from_text(ref: str, pairs: Mapping[str, str]) -> dict[str, Any]:
    """Parameters given as text (``--param k=v``), as their kinds hold them; a name it lacks is kept, to be refused."""
    builtin = find_builtin(ref)
    kinds = {p.name: p for p in builtin.params}
    return {k: coerce_param(kinds[k], v) if k in kinds else v for k, v in pairs.items()}


def builtin_sync(job: Mapping[str, Any]) -> dict[str, Any] | None:
    """The normalized sync section a job runs: a DATA_SYNC's own, or a built-in's that is one; else None."""
    if job["type"] == DATA_SYNC:
        return dict(job["sync"])
    if job["type"] != BUILTIN:
        return None
    kind, section = find_builtin(job["builtin"]).build(job["params"])
    return normalize_sync(section, "config.params") if kind == "sync" else None


def job_depots(job: Mapping[str, Any]) -> set[str]:
    """The depots a DATA_SYNC or BUILTIN job reads and writes."""
    sync = builtin_sync(job)
    if sync is not None:
        return sync_depots(sync)
    _, raw = find_builtin(job["builtin"]).build(job["params"])
    return {parse_address(x["dataset"], "params")["depot"] for x in [*raw["inputs"], *raw["outputs"]]}


def job_pipeline(
    job: Mapping[str, Any], depot_types: Mapping[str, str], after: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The normalized pipeline a DATA_SYNC or BUILTIN job runs; ``after``: a sync's last watermark."""
    sync = builtin_sync(job)
    if sync is not None:
        return sync_pipeline(sync, depot_types, after)
    _, raw = find_builtin(job["builtin"]).build(job["params"])
    for item in [*raw["inputs"], *raw["outputs"]]:
        depot = parse_address(item["dataset"], "params")["depot"]
        item["format"] = settle_format(item["format"], depot_types.get(depot))
    try:
        return normalize_pipeline(raw, "config.params")
    except InvalidInput as exc:  # a parameter the built-in's SQL cannot take (checked as it was built)
        raise InvalidInput(exc.detail, "config.params") from None


def check_job_section(kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The normalized section of a DATA_SYNC (``sync``) or BUILTIN (``builtin``, ``params``) job."""
    if kind == DATA_SYNC:
        return {"sync": normalize_sync(config.get("sync"))}
    checks.mapping(config, "config")
    return normalize_builtin(config)
