"""SQL pipeline specs (DataOS Flare's ``stackSpec.job``): dataset addresses, inputs, steps and outputs, validated."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from queue_core.errors import InvalidInput, Remedy
from queue_core.specs import checks
from queue_core.specs.depots import FILE_DEPOTS, check_identifier
from queue_core.specs.engines import DIALECTS, check_engine

__all__ = [
    "FILE_FORMATS",
    "FLARE_STACKS",
    "SAVE_MODES",
    "TABLE_FORMATS",
    "check_depots",
    "check_stack",
    "is_script",
    "local_path",
    "normalize_pipeline",
    "parse_address",
    "s3_key",
    "workflow_definitions",
]

FILE_FORMATS = ("csv", "parquet", "json")
# ``bigquery`` is a warehouse table here, so DataOS specs written for BigQuery run unchanged.
TABLE_FORMATS = ("table", "bigquery")
SAVE_MODES = {"overwrite": "overwrite", "append": "append", "ignore": "ignore", "errorifexists": "errorIfExists"}
MAX_SQL_CHARS = 1024 * 1024
_ADDRESS = re.compile(r"^(dataos|depot)://([^:/?#]*):([^/?#]*)/([^?#]*)(?:\?([^#]*))?$")
_PATH_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_JOB_KEYS = {"inputs", "steps", "outputs", "explain", "logLevel", "dialect"}
_INPUT_KEYS = {"name", "dataset", "format", "schemaPath", "options"}
_OUTPUT_KEYS = {"name", "dataset", "format", "options", "description", "tags", "title"}
LAYOUTS = ("file", "folder")
_LOG_LEVELS = ("DEBUG", "INFO", "WARN", "WARNING", "ERROR")
# The DataOS Flare stacks a SQL job's file may name: recorded as given; both run on DuckDB here.
FLARE_STACKS = ("flare:6.0", "flare:7.0")


def check_stack(value: Any, field: str) -> str:
    """A Flare stack this platform runs, or ``InvalidInput`` in one line."""
    if value not in FLARE_STACKS:
        shown = repr(value)[:60] if isinstance(value, str) else "that value"
        raise InvalidInput(
            f"stack {shown} is not supported; use one of {', '.join(FLARE_STACKS)} (a SQL job) "
            "or name a stored definition",
            field,
        )
    return str(value)


def parse_address(value: Any, field: str, path: bool = False) -> dict[str, Any]:
    """``SCHEME://DEPOT:COLLECTION/DATASET[?params]`` split into validated parts; ``path`` allows a file path."""
    match = _ADDRESS.match(value) if isinstance(value, str) and len(value) <= 2048 else None
    if match is None:
        raise InvalidInput("is not a dataset address dataos://DEPOT:COLLECTION/DATASET[?params]", field)
    scheme, depot, collection, dataset, query = match.groups()
    del scheme  # dataos:// and depot:// mean the same here
    check_identifier(depot, field, "depot name")
    check_identifier(collection, field, "collection")
    if path:
        parts = dataset.split("/")
        if not all(_PATH_PART.fullmatch(p) and p not in (".", "..") for p in parts):
            raise InvalidInput(f"{dataset!r} is not a relative path of plain names", field)
    else:
        check_identifier(dataset, field, "dataset")
    params = dict(parse_qsl(query or "", keep_blank_values=True))
    return {"address": value, "depot": depot, "collection": collection, "dataset": dataset, "params": params}


def _format(value: Any, field: str) -> str:
    fmt = checks.choice(value, FILE_FORMATS + TABLE_FORMATS, field, "format", fold_case=True)
    return "table" if fmt == "bigquery" else fmt


def _input(raw: Any, field: str) -> dict[str, Any]:
    spec = checks.mapping(raw, field)
    checks.no_unknown(spec, _INPUT_KEYS, field)
    out = {
        "name": check_identifier(spec.get("name"), f"{field}.name", "view name"),
        "dataset": parse_address(spec.get("dataset"), f"{field}.dataset"),
        "format": _format(spec.get("format", "csv"), f"{field}.format"),
        "options": dict(checks.mapping(spec.get("options", {}), f"{field}.options")),
        "schemaPath": None,
    }
    if spec.get("schemaPath") is not None:
        out["schemaPath"] = parse_address(spec["schemaPath"], f"{field}.schemaPath", path=True)
    return out


def _step(raw: Any, field: str) -> dict[str, str]:
    spec = checks.mapping(raw, field)
    checks.no_unknown(spec, {"name", "sql"}, field)
    sql = spec.get("sql")
    if not isinstance(sql, str) or not sql.strip() or len(sql) > MAX_SQL_CHARS or "\x00" in sql:
        raise InvalidInput(f"must be one SQL query of at most {MAX_SQL_CHARS} characters", f"{field}.sql")
    return {"name": check_identifier(spec.get("name"), f"{field}.name", "view name"), "sql": sql}


def _output(raw: Any, field: str, steps: set[str] | None) -> dict[str, Any]:
    spec = checks.mapping(raw, field)
    checks.no_unknown(spec, _OUTPUT_KEYS, field)
    name = check_identifier(spec.get("name"), f"{field}.name", "view name")
    if steps is not None and name not in steps:
        raise InvalidInput(f"names no step; the steps are {', '.join(sorted(steps))}", f"{field}.name")
    options = dict(checks.mapping(spec.get("options", {}), f"{field}.options"))
    mode = options.get("saveMode", "errorIfExists")
    canonical = checks.choice(mode, SAVE_MODES.values(), f"{field}.options.saveMode", fold_case=True)
    checks.choice(options.get("layout", "file"), LAYOUTS, f"{field}.options.layout")
    # Options the engine has no use for (bigquery.temporaryBucket, ...) are kept as given, not rejected.
    return {
        "name": name,
        "dataset": parse_address(spec.get("dataset"), f"{field}.dataset"),
        "format": _format(spec.get("format", "parquet"), f"{field}.format"),
        "saveMode": canonical,
        "options": {**options, "saveMode": canonical},
    }


def is_script(job: Mapping[str, Any]) -> bool:
    """Whether a SQL job runs a ``.sql`` file (or Hive ``.hql``): its statements in order, in place of ``steps``."""
    location = job.get("sourceLocation")
    scripts = (".sql", ".hql")
    return job.get("type") == "SQL" and isinstance(location, str) and location.lower().endswith(scripts)


def normalize_pipeline(
    raw: Any, field: str = "config.pipeline", script: bool = False, dialect: str = "duckdb"
) -> dict[str, Any]:
    """The pipeline with defaults filled in, or ``InvalidInput`` naming the first bad field.

    ``dialect``: what its steps are written in unless it says (``spark`` for a Flare job, ``duckdb`` for a
    native pipeline); recorded only when ``spark``, so native pipelines keep their normalized form.

    ``script``: the pipeline of a ``.sql`` file, which has no ``steps`` (its statements are), and whose
    outputs name views or tables its statements create (checked when it runs).
    """
    job = checks.mapping(raw, field)
    checks.no_unknown(job, _JOB_KEYS, field)
    inputs = [_input(x, f"{field}.inputs[{i}]") for i, x in enumerate(job.get("inputs") or [])]
    steps: list[dict[str, str]] = []
    if script and "steps" in job:
        raise InvalidInput("a .sql file's statements are its steps: give only inputs and outputs", f"{field}.steps")
    for i, group in enumerate([] if script else checks.non_empty_list(job.get("steps"), f"{field}.steps")):
        group = checks.mapping(group, f"{field}.steps[{i}]")
        checks.no_unknown(group, {"sequence"}, f"{field}.steps[{i}]")
        seq = checks.non_empty_list(group.get("sequence"), f"{field}.steps[{i}].sequence")
        steps += [_step(s, f"{field}.steps[{i}].sequence[{j}]") for j, s in enumerate(seq)]
    views = [x["name"] for x in inputs] + [s["name"] for s in steps]
    duplicates = sorted({v for v in views if views.count(v) > 1})
    if duplicates:
        raise InvalidInput(f"view {duplicates[0]!r} is defined twice", field)
    step_names = None if script else {s["name"] for s in steps}
    outputs = [_output(x, f"{field}.outputs[{i}]", step_names) for i, x in enumerate(job.get("outputs") or [])]
    explain = checks.boolean(job.get("explain", False), f"{field}.explain")
    level = checks.choice(job.get("logLevel", "INFO"), _LOG_LEVELS, f"{field}.logLevel")
    written_in = checks.choice(job.get("dialect", dialect), DIALECTS, f"{field}.dialect", "dialect", fold_case=True)
    out = {"inputs": inputs, "steps": steps, "outputs": outputs, "explain": explain, "logLevel": level}
    if written_in == "spark" and not script:
        out["dialect"] = "spark"
    return out


def check_depots(pipeline: Mapping[str, Any], depot_types: Mapping[str, str]) -> None:
    """``InvalidInput`` when an address names an unknown depot or a format its depot cannot hold."""
    named = [(f"inputs[{i}]", x) for i, x in enumerate(pipeline["inputs"])]
    named += [(f"outputs[{i}]", x) for i, x in enumerate(pipeline["outputs"])]
    for where, spec in named:
        depot = spec["dataset"]["depot"]
        field = f"config.pipeline.{where}.dataset"
        if depot not in depot_types:
            raise InvalidInput(f"no depot named {depot!r}", field, remedy=Remedy.ADD_DEPOT, subject=depot)
        is_file = depot_types[depot] in FILE_DEPOTS
        if is_file == (spec["format"] == "table"):
            wanted = ", ".join(FILE_FORMATS) if is_file else ", ".join(TABLE_FORMATS)
            raise InvalidInput(f"a {depot_types[depot]} depot holds {wanted}, not {spec['format']}", field)
        if spec["dataset"]["collection"] == "none" and not is_file:
            raise InvalidInput("a warehouse dataset needs a collection (its schema)", field)
    for i, spec in enumerate(pipeline["inputs"]):
        schema = spec["schemaPath"]
        if schema is not None and depot_types.get(schema["depot"]) not in FILE_DEPOTS:
            raise InvalidInput(f"{schema['depot']!r} is not a file depot", f"config.pipeline.inputs[{i}].schemaPath")


def local_path(depot: Mapping[str, Any], address: Mapping[str, Any], suffix: str = "") -> Path:
    """The file or folder an address names in a local depot (``suffix``: the format's extension)."""
    root = Path(depot["config"]["path"])
    base = root if address["collection"] == "none" else root / address["collection"]
    return base / f"{address['dataset']}{suffix}"


def s3_key(config: Mapping[str, Any], address: Mapping[str, Any], suffix: str = "") -> str:
    """The object key (or, without ``suffix``, the folder) an address names in an S3 depot."""
    parts = [config.get("prefix") or "", "" if address["collection"] == "none" else address["collection"]]
    return "/".join(p for p in [*parts, address["dataset"]] if p) + suffix


def workflow_definitions(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One raw SQL definition per ``workflow.dag`` entry with a ``spec.stackSpec.job``, named after the entry."""
    if doc.get("version") is None:
        raise InvalidInput("is required", "version")
    workflow = checks.mapping(doc.get("workflow"), "workflow")
    out: list[dict[str, Any]] = []
    for i, entry in enumerate(checks.non_empty_list(workflow.get("dag"), "workflow.dag")):
        entry = checks.mapping(entry, f"workflow.dag[{i}]")
        spec = checks.mapping(entry.get("spec", {}), f"workflow.dag[{i}].spec")
        job = checks.mapping(spec.get("stackSpec", {}), f"workflow.dag[{i}].spec.stackSpec").get("job")
        if job is None:
            continue
        raw: dict[str, Any] = {
            "name": entry.get("name"),
            "description": entry.get("description") or entry.get("title") or "",
            "config": {"type": "SQL", "pipeline": job},
            "stack": check_stack(spec.get("stack"), f"workflow.dag[{i}].spec.stack"),
        }
        if entry.get("title") is not None:
            raw["title"] = entry["title"]
        if spec.get("engine") is not None:  # beside stack: the engine its Spark SQL steps run on
            raw["config"]["engine"] = check_engine(spec["engine"], f"workflow.dag[{i}].spec.engine")
        if spec.get("compute") is not None:
            raw["cluster"] = {"name": spec["compute"]}
        out.append(raw)
    if not out:
        raise InvalidInput("has no entry with spec.stackSpec.job", "workflow.dag")
    return out
