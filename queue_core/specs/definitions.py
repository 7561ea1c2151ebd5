"""Validation of Bodo-style job definitions: a raw mapping in, a normalized spec out, or one clear error."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from queue_core.errors import InvalidInput, Remedy
from queue_core.specs import checks
from queue_core.specs.checks import name as check_name  # re-exported: services import it from here
from queue_core.specs.checks import unicode_text as check_text  # re-exported: services import it from here
from queue_core.specs.notifications import normalize_notifications
from queue_core.specs.retries import normalize_backoff, normalize_rules
from queue_core.specs.run_control import RUN_CONTROL_KEYS, normalize_run_control
from queue_core.specs.tags import normalize_tags

__all__ = [
    "JOB_TYPES",
    "SOURCE_TYPES",
    "check_args",
    "check_env",
    "check_name",
    "check_text",
    "check_timeout",
    "normalize_definition",
]

JOB_TYPES = (
    "PYTHON",
    "SQL",
    "SHELL",
    "DATA_SYNC",
    "BUILTIN",
    "EXTERNAL_APP",
)  # see specs/builtins.py, external_apps.py
SOURCE_TYPES = ("WORKSPACE", "GIT", "S3", "RESOURCE")

DEFAULT_NUM_RETRIES = 0
DEFAULT_DELAY_MINUTES = 1.0
DEFAULT_RETRY_ON_TIMEOUT = False
DEFAULT_TIMEOUT_MINUTES = 60.0
MAX_NUM_RETRIES = 100
MAX_TIMEOUT_MINUTES = 7 * 24 * 60.0
MAX_DELAY_MINUTES = 24 * 60.0
MAX_ARGS_CHARS = 64 * 1024
MAX_ENV_VARS = 500
MAX_WORKERS = 256
SECRET_FIELDS = ("token", "password", "secretAccessKey", "accessKeyId", "sessionToken")

_TOP_KEYS = {"name", "description", "config", "cluster", "trigger", "tags", "title", "stack"}
_CONFIG_KEYS = {
    "source",
    "type",
    "sourceLocation",
    "args",
    "retryStrategy",
    "timeout",
    "envVars",
    "pipeline",
    "network",
    *RUN_CONTROL_KEYS,
    "notifications",
    "sync",
    "builtin",
    "params",
    "app",
    "configFiles",
    "engine",
}
# The sections only one job type has.
_SECTION_TYPES = {"sync": "DATA_SYNC", "builtin": "BUILTIN", "params": "BUILTIN"}
# ``network: none``: the job runs in an empty network namespace. Absent: the machine's network.
NETWORKS = ("none",)
# An inline pipeline (``config.pipeline``) needs no source: this is what its definition records instead.
_NO_SOURCE = {"type": "WORKSPACE", "sourceDef": {"path": ""}}
_RETRY_KEYS = {"numRetries", "delayBetweenRetries", "retryOnTimeout", "rules", "backoff"}
_CLUSTER_KEYS = {"name", "instanceType", "workersQuantity", "engine"}
_SOURCE_DEF_KEYS = {
    "WORKSPACE": {"path"},
    "GIT": {"repoUrl", "reference", "username", "token"},
    "S3": {"path", "region", "endpointUrl", "accessKeyId", "secretAccessKey", "sessionToken"},
    "RESOURCE": {"name", "version"},
}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _secret_ref(value: Any, field: str) -> dict[str, str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise InvalidInput(
            'a literal secret is not accepted; store it as a secret and write {"secret": "NAME"}',
            field,
            remedy=Remedy.STORE_SECRET,
        )
    ref = checks.mapping(value, field)
    if set(ref) != {"secret"}:
        raise InvalidInput('must be a secret reference {"secret": "NAME"}', field)
    return {"secret": checks.name(ref["secret"], f"{field}.secret")}


def _source(raw: Any) -> dict[str, Any]:
    field = "config.source"
    source = checks.mapping(raw, field)
    checks.no_unknown(source, {"type", "sourceDef"}, field)
    kind = checks.choice(source.get("type"), SOURCE_TYPES, f"{field}.type", "source type")
    sdef_field = f"{field}.sourceDef"
    sdef = dict(checks.mapping(source.get("sourceDef", {}), sdef_field))
    checks.no_unknown(sdef, _SOURCE_DEF_KEYS[kind], sdef_field)
    for key in SECRET_FIELDS:
        if key in sdef:
            sdef[key] = _secret_ref(sdef[key], f"{sdef_field}.{key}")
    if kind == "WORKSPACE":
        sdef["path"] = checks.relative_path(sdef.get("path", ""), f"{sdef_field}.path", allow_empty=True)
    elif kind == "GIT":
        sdef["repoUrl"] = _repo_url(sdef.get("repoUrl"), f"{sdef_field}.repoUrl")
        reference = sdef.get("reference", "")
        if not isinstance(reference, str) or reference.startswith("-"):
            raise InvalidInput("must be a branch, tag or commit", f"{sdef_field}.reference")
        sdef["reference"] = reference
        if sdef.get("username") is not None:
            checks.non_empty_string(sdef["username"], f"{sdef_field}.username", 256)
    elif kind == "S3":
        _s3_source(sdef, sdef_field)
    else:
        sdef["name"] = checks.name(sdef.get("name"), f"{sdef_field}.name")
        if sdef.get("version") is not None:
            checks.whole_number(sdef["version"], f"{sdef_field}.version", 1, what="version number")
    return {"type": kind, "sourceDef": sdef}


def _s3_source(sdef: dict[str, Any], field: str) -> None:
    path = sdef.get("path")
    if not isinstance(path, str) or not re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,62}(/.*)?$", path):
        raise InvalidInput(f"{path!r} is not an s3://bucket/key address", f"{field}.path")
    if sdef.get("region") is not None:
        checks.region(sdef["region"], f"{field}.region")
    if sdef.get("endpointUrl") is not None:
        checks.endpoint_url(sdef["endpointUrl"], f"{field}.endpointUrl")


def _repo_url(url: Any, field: str) -> str:
    """An https:// or file:// repository URL with no credential in it; the value is never echoed."""
    if not isinstance(url, str) or not url:
        raise InvalidInput("is required for a GIT source", field)
    if url.startswith("-") or not re.match(r"^(https://|file://|/)", url) or any(c.isspace() for c in url):
        raise InvalidInput("is not an https:// or file:// URL (invalid_repo_url)", field)
    if url.startswith("https://"):
        try:
            parts = urlsplit(url)
        except ValueError:
            raise InvalidInput("is not a valid URL (invalid_repo_url)", field) from None
        if parts.username is not None or parts.password is not None:
            raise InvalidInput(
                'carries a credential; store the token as a secret, write "token": {"secret": "NAME"} '
                'and the user in "username"',
                field,
                remedy=Remedy.STORE_SECRET,
            )
    return url


def _retry(raw: Any) -> dict[str, Any]:
    field = "config.retryStrategy"
    retry = checks.mapping(raw if raw is not None else {}, field)
    checks.no_unknown(retry, _RETRY_KEYS, field)
    retries = checks.whole_number(
        retry.get("numRetries", DEFAULT_NUM_RETRIES), f"{field}.numRetries", 0, MAX_NUM_RETRIES
    )
    delay = checks.number(retry.get("delayBetweenRetries", DEFAULT_DELAY_MINUTES), f"{field}.delayBetweenRetries")
    if not 0 <= delay <= MAX_DELAY_MINUTES:
        raise InvalidInput(f"must be between 0 and {MAX_DELAY_MINUTES:g} minutes", f"{field}.delayBetweenRetries")
    on_timeout = checks.boolean(retry.get("retryOnTimeout", DEFAULT_RETRY_ON_TIMEOUT), f"{field}.retryOnTimeout")
    strategy: dict[str, Any] = {"numRetries": retries, "delayBetweenRetries": delay, "retryOnTimeout": on_timeout}
    # Only when given: definitions without them keep their normalized form.
    if "rules" in retry:
        strategy["rules"] = normalize_rules(retry["rules"], f"{field}.rules")
    if "backoff" in retry:
        strategy["backoff"] = normalize_backoff(retry["backoff"], f"{field}.backoff", MAX_DELAY_MINUTES)
    return strategy


def check_timeout(value: Any, field: str = "config.timeout") -> float:
    """A per-attempt timeout in minutes: positive and at most a week."""
    minutes = checks.number(value, field)
    if minutes <= 0:
        raise InvalidInput(f"must be a positive number of minutes, not {value!r}", field)
    if minutes > MAX_TIMEOUT_MINUTES:
        raise InvalidInput(f"must be at most {MAX_TIMEOUT_MINUTES:g} minutes", field)
    return minutes


def check_args(value: Any, field: str = "config.args") -> str:
    if not isinstance(value, str):
        raise InvalidInput("must be a string", field)
    checks.unicode_text(value, field)
    if len(value) > MAX_ARGS_CHARS or "\x00" in value:
        raise InvalidInput(f"must be at most {MAX_ARGS_CHARS} characters without NUL bytes", field)
    import shlex

    try:
        shlex.split(value)
    except ValueError as exc:
        raise InvalidInput(f"cannot be split into arguments: {exc}", field) from exc
    return value


def check_env(value: Any, field: str = "config.envVars") -> dict[str, Any]:
    """Variables as strings, or secret references ``{"secret": NAME}`` the worker resolves."""
    env = checks.mapping(value, field)
    checks.unicode_text(env, field)
    if len(env) > MAX_ENV_VARS:
        raise InvalidInput(f"at most {MAX_ENV_VARS} variables", field)
    out: dict[str, Any] = {}
    for key, val in env.items():
        if not isinstance(key, str) or not _ENV_NAME.fullmatch(key):
            raise InvalidInput(f"{key!r} is not a valid variable name", field)
        if isinstance(val, Mapping):
            out[key] = _secret_ref(val, f"{field}.{key}")
            continue
        if isinstance(val, bool) or not isinstance(val, str | int | float):
            raise InvalidInput("must be a string", f"{field}.{key}")
        text = str(val)
        if "\x00" in text or len(text) > MAX_ARGS_CHARS:
            raise InvalidInput("must be a short string without NUL bytes", f"{field}.{key}")
        out[key] = text
    return out


def _config_files(raw: Any, field: str = "config.configFiles") -> list[dict[str, Any]]:
    """``["NAME", "NAME@VERSION", ...]``: registered xml resources, each delivered beside the entry file."""
    if not isinstance(raw, list) or len(raw) > 50:
        raise InvalidInput("must be a list of resource names (NAME or NAME@VERSION), at most 50", field)
    out: list[dict[str, Any]] = []
    for i, ref in enumerate(raw):
        name, _, version = ref.partition("@") if isinstance(ref, str) else ("", "", "")
        entry: dict[str, Any] = {"name": checks.name(name or None, f"{field}[{i}]")}
        if version:
            if not version.isdigit() or int(version) < 1:
                raise InvalidInput("must be NAME or NAME@VERSION", f"{field}[{i}]")
            entry["version"] = int(version)
        out.append(entry)
    return out


def _cluster(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    cluster = checks.mapping(raw, "cluster")
    checks.no_unknown(cluster, _CLUSTER_KEYS, "cluster")
    name = checks.name(cluster.get("name"), "cluster.name")
    instance = checks.non_empty_string(cluster.get("instanceType", "local"), "cluster.instanceType", 128)
    workers = checks.whole_number(cluster.get("workersQuantity", 1), "cluster.workersQuantity", 0, MAX_WORKERS)
    section = {"name": name, "instanceType": instance, "workersQuantity": workers}
    if "engine" in cluster:  # the cluster's default engine, if this definition registers it; kept only when given
        from queue_core.specs.engines import check_engine

        section["engine"] = check_engine(cluster["engine"], "cluster.engine")
    return section


def normalize_definition(raw: Any) -> dict[str, Any]:
    """The definition with Bodo's defaults filled in, or ``InvalidInput`` naming the first bad field."""
    top = checks.mapping(raw, "definition")
    checks.unicode_text(top, "")
    checks.no_unknown(top, _TOP_KEYS, "")
    name = checks.name(top.get("name"), "name")
    description = checks.text(top.get("description", ""), "description")
    config = checks.mapping(top.get("config"), "config")
    checks.no_unknown(config, _CONFIG_KEYS, "config")
    kind = checks.choice(config.get("type"), JOB_TYPES, "config.type", "job type")
    for key, owner in _SECTION_TYPES.items():
        if key in config and kind != owner:
            raise InvalidInput(f"applies to {owner} jobs only", f"config.{key}")
    generated = None
    if kind in ("DATA_SYNC", "BUILTIN"):
        from queue_core.specs.builtins import check_job_section

        for key in ("source", "sourceLocation"):
            if key in config:
                raise InvalidInput(f"does not apply to {kind} jobs", f"config.{key}")
        generated = check_job_section(kind, config)  # no source: the job is a pipeline jobledger writes
    pipeline = None
    script = False
    if kind == "SQL":
        from queue_core.specs.pipelines import is_script

        script = is_script(config)
    if "pipeline" in config:
        from queue_core.specs.pipelines import normalize_pipeline

        if kind != "SQL":
            raise InvalidInput("applies to SQL jobs only", "config.pipeline")
        # A Flare job's steps are Spark SQL (its file names a stack); a native pipeline's are DuckDB SQL.
        flare = "spark" if top.get("stack") is not None else "duckdb"
        pipeline = normalize_pipeline(config["pipeline"], script=script, dialect=flare)
    engine = None
    if "engine" in config:
        from queue_core.specs.engines import check_engine

        if kind != "SQL":
            raise InvalidInput("applies to SQL jobs only", "config.engine")
        engine = check_engine(config["engine"], "config.engine")
        if engine == "spark" and (script or pipeline is None):
            raise InvalidInput("spark runs a pipeline's steps: a .sql file or a pipeline file runs on duckdb",
                               "config.engine")  # fmt: skip
    if pipeline is not None:
        from queue_core.specs.engines import transpile_steps

        pipeline = transpile_steps(pipeline, engine or "duckdb")
    app = None
    if kind == "EXTERNAL_APP" or "app" in config:
        from queue_core.specs.external_apps import normalize_app

        if kind != "EXTERNAL_APP":
            raise InvalidInput("applies to EXTERNAL_APP jobs only", "config.app")
        for key in ("source", "sourceLocation", "pipeline"):
            if key in config:
                raise InvalidInput("does not apply to an EXTERNAL_APP job: its app section says what it runs",
                                   f"config.{key}")  # fmt: skip
        app = normalize_app(config.get("app"))
    if "source" not in config and (pipeline is None or script) and generated is None and app is None:
        raise InvalidInput("is required" + (" to fetch the .sql file from" if script else ""), "config.source")
    source = _source(config["source"]) if "source" in config else dict(_NO_SOURCE)
    no_entry = pipeline is not None or generated is not None or app is not None or source["type"] == "RESOURCE"
    if "sourceLocation" not in config and not no_entry:
        raise InvalidInput("is required", "config.sourceLocation")
    location = None
    if "sourceLocation" in config:
        location = checks.relative_path(config["sourceLocation"], "config.sourceLocation")
    normalized: dict[str, Any] = {
        "source": source,
        "type": kind,
        "sourceLocation": location,
        "args": check_args(config.get("args", "")),
        "retryStrategy": _retry(config.get("retryStrategy")),
        "timeout": check_timeout(config.get("timeout", DEFAULT_TIMEOUT_MINUTES)),
        "envVars": check_env(config.get("envVars", {})),
    }
    if pipeline is not None:
        normalized["pipeline"] = pipeline
    if engine is not None:  # only when given: definitions without it keep their normalized form
        normalized["engine"] = engine
    if generated is not None:
        normalized.update(generated)
    if app is not None:
        normalized["app"] = app
    if "configFiles" in config:  # only when given: xml resources delivered beside the entry file
        normalized["configFiles"] = _config_files(config["configFiles"])
    if "network" in config:  # only when given: definitions without it keep their normalized form
        if config["network"] not in NETWORKS:
            raise InvalidInput("must be 'none' (no network), or left out for the machine's network", "config.network")
        normalized["network"] = config["network"]
    normalized.update(normalize_run_control(config, "config"))  # only those given, like network
    if "notifications" in config:  # only when given, as network
        normalized["notifications"] = normalize_notifications(config["notifications"], "config.notifications")
    spec: dict[str, Any] = {
        "name": name,
        "description": description,
        "config": normalized,
        "cluster": _cluster(top.get("cluster")),
    }
    if "tags" in top:  # only when given: definitions without tags keep their normalized form
        spec["tags"] = normalize_tags(top["tags"])
    if top.get("title") is not None:  # only when given (a DataOS entry's): definitions without one keep their form
        spec["title"] = checks.text(top["title"], "title")
    if top.get("stack") is not None:
        from queue_core.specs.pipelines import check_stack

        spec["stack"] = check_stack(top["stack"], "stack")
    if "trigger" in top:  # only when given: definitions without one keep their normalized form
        from queue_core.specs.triggers import normalize_trigger

        spec["trigger"] = normalize_trigger(top["trigger"])
    return spec
