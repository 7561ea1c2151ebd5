"""Validation of Bodo-style job definitions: a raw mapping in, a normalized spec out, or one clear error."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from queue_core.errors import InvalidInput

__all__ = [
    "JOB_TYPES",
    "NAME_PATTERN",
    "SOURCE_TYPES",
    "check_name",
    "check_relative_path",
    "check_text",
    "normalize_definition",
]

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
JOB_TYPES = ("PYTHON", "SQL", "SHELL")
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

_TOP_KEYS = {"name", "description", "config", "cluster"}
_CONFIG_KEYS = {"source", "type", "sourceLocation", "args", "retryStrategy", "timeout", "envVars", "pipeline"}
# An inline pipeline (``config.pipeline``) needs no source: this is what its definition records instead.
_NO_SOURCE = {"type": "WORKSPACE", "sourceDef": {"path": ""}}
_RETRY_KEYS = {"numRetries", "delayBetweenRetries", "retryOnTimeout"}
_CLUSTER_KEYS = {"name", "instanceType", "workersQuantity"}
_SOURCE_DEF_KEYS = {
    "WORKSPACE": {"path"},
    "GIT": {"repoUrl", "reference", "username", "token"},
    "S3": {"path", "region", "endpointUrl", "accessKeyId", "secretAccessKey", "sessionToken"},
    "RESOURCE": {"name", "version"},
}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


_UUID_SHAPED = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def check_name(value: Any, field: str = "name") -> str:
    """A valid name, or ``InvalidInput`` naming the field."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        shown = repr(value) if isinstance(value, str) and len(value) <= 140 else "the value"
        raise InvalidInput(f"{shown} is not a valid name (letters, digits, '_', '.', '-'; at most 128)", field)
    if _UUID_SHAPED.fullmatch(value):
        # Commands take NAME-or-UUID: a name shaped like a UUID could never be told apart from an id.
        raise InvalidInput(f"{value!r} looks like a UUID; a name must not", field)
    return value


def check_text(value: Any, field: str) -> None:
    """Refuse a string anywhere in ``value`` (keys too) that is not Unicode text: a lone surrogate, as a
    JSON ``\\udcff`` escape or a Python caller can produce, has no UTF-8 form and could not be stored."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput("is not valid Unicode text (a lone surrogate)", field) from None
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_text(key, field or "definition")
            check_text(item, f"{field}.{key}" if field else str(key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_text(item, f"{field}[{i}]")


def check_relative_path(value: Any, field: str, allow_empty: bool = False) -> str:
    """A relative path that cannot leave the directory it is resolved under."""
    if not isinstance(value, str):
        raise InvalidInput("must be a string", field)
    if value == "" and allow_empty:
        return value
    if value == "" or "\x00" in value:
        raise InvalidInput("must be a non-empty path without NUL bytes", field)
    path = PurePosixPath(value)
    if path.is_absolute() or value.startswith("~") or ".." in path.parts:
        raise InvalidInput(f"{value!r} leaves the workspace (path_outside_workspace)", field)
    return value


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput("must be an object", field)
    return value


def _no_unknown(raw: Mapping[str, Any], allowed: set[str], field: str) -> None:
    for key in raw:
        if key not in allowed:
            raise InvalidInput("unknown field", f"{field}.{key}" if field else str(key))


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"must be a number, not {value!r}", field)
    return float(value)


def _secret_ref(value: Any, field: str) -> dict[str, str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise InvalidInput(
            'a literal secret is not accepted; store it with `jobledger secret set NAME` and write {"secret": "NAME"}',
            field,
        )
    ref = _mapping(value, field)
    if set(ref) != {"secret"}:
        raise InvalidInput('must be a secret reference {"secret": "NAME"}', field)
    return {"secret": check_name(ref["secret"], f"{field}.secret")}


def _source(raw: Any) -> dict[str, Any]:
    field = "config.source"
    source = _mapping(raw, field)
    _no_unknown(source, {"type", "sourceDef"}, field)
    kind = source.get("type")
    if kind not in SOURCE_TYPES:
        raise InvalidInput(f"unknown source type {kind!r}; use one of {', '.join(SOURCE_TYPES)}", f"{field}.type")
    sdef_field = f"{field}.sourceDef"
    sdef = dict(_mapping(source.get("sourceDef", {}), sdef_field))
    _no_unknown(sdef, _SOURCE_DEF_KEYS[kind], sdef_field)
    for key in SECRET_FIELDS:
        if key in sdef:
            sdef[key] = _secret_ref(sdef[key], f"{sdef_field}.{key}")
    if kind == "WORKSPACE":
        sdef["path"] = check_relative_path(sdef.get("path", ""), f"{sdef_field}.path", allow_empty=True)
    elif kind == "GIT":
        sdef["repoUrl"] = _repo_url(sdef.get("repoUrl"), f"{sdef_field}.repoUrl")
        reference = sdef.get("reference", "")
        if not isinstance(reference, str) or reference.startswith("-"):
            raise InvalidInput("must be a branch, tag or commit", f"{sdef_field}.reference")
        sdef["reference"] = reference
        username = sdef.get("username")
        if username is not None and (not isinstance(username, str) or not username or len(username) > 256):
            raise InvalidInput("must be a non-empty string", f"{sdef_field}.username")
    elif kind == "S3":
        _s3_source(sdef, sdef_field)
    else:
        sdef["name"] = check_name(sdef.get("name"), f"{sdef_field}.name")
        version = sdef.get("version")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
            raise InvalidInput(f"must be a version number from 1, not {version!r}", f"{sdef_field}.version")
    return {"type": kind, "sourceDef": sdef}


def _s3_source(sdef: dict[str, Any], field: str) -> None:
    path = sdef.get("path")
    if not isinstance(path, str) or not re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,62}(/.*)?$", path):
        raise InvalidInput(f"{path!r} is not an s3://bucket/key address", f"{field}.path")
    region = sdef.get("region")
    if region is not None and (not isinstance(region, str) or not re.fullmatch(r"[a-z0-9-]{1,64}", region)):
        raise InvalidInput("is not a region name such as eu-west-1", f"{field}.region")
    endpoint = sdef.get("endpointUrl")
    if endpoint is not None and (
        not isinstance(endpoint, str) or not re.match(r"^https?://[^\s/@]+(/\S*)?$", endpoint)
    ):
        raise InvalidInput("is not an http(s):// URL without a credential in it", f"{field}.endpointUrl")


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
                "carries a credential; put the token in `jobledger secret set NAME`, write "
                '"token": {"secret": "NAME"} and the user in "username"',
                field,
            )
    return url


def _retry(raw: Any) -> dict[str, Any]:
    field = "config.retryStrategy"
    retry = _mapping(raw if raw is not None else {}, field)
    _no_unknown(retry, _RETRY_KEYS, field)
    retries = retry.get("numRetries", DEFAULT_NUM_RETRIES)
    if isinstance(retries, bool) or not isinstance(retries, int):
        raise InvalidInput(f"must be a whole number, not {retries!r}", f"{field}.numRetries")
    if not 0 <= retries <= MAX_NUM_RETRIES:
        raise InvalidInput(f"must be between 0 and {MAX_NUM_RETRIES}, not {retries}", f"{field}.numRetries")
    delay = _number(retry.get("delayBetweenRetries", DEFAULT_DELAY_MINUTES), f"{field}.delayBetweenRetries")
    if not 0 <= delay <= MAX_DELAY_MINUTES:
        raise InvalidInput(f"must be between 0 and {MAX_DELAY_MINUTES:g} minutes", f"{field}.delayBetweenRetries")
    on_timeout = retry.get("retryOnTimeout", DEFAULT_RETRY_ON_TIMEOUT)
    if not isinstance(on_timeout, bool):
        raise InvalidInput("must be true or false", f"{field}.retryOnTimeout")
    return {"numRetries": retries, "delayBetweenRetries": delay, "retryOnTimeout": on_timeout}


def check_timeout(value: Any, field: str = "config.timeout") -> float:
    """A per-attempt timeout in minutes: positive and at most a week."""
    minutes = _number(value, field)
    if minutes <= 0:
        raise InvalidInput(f"must be a positive number of minutes, not {value!r}", field)
    if minutes > MAX_TIMEOUT_MINUTES:
        raise InvalidInput(f"must be at most {MAX_TIMEOUT_MINUTES:g} minutes", field)
    return minutes


def check_args(value: Any, field: str = "config.args") -> str:
    if not isinstance(value, str):
        raise InvalidInput("must be a string", field)
    check_text(value, field)
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
    env = _mapping(value, field)
    check_text(env, field)
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


def _cluster(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    cluster = _mapping(raw, "cluster")
    _no_unknown(cluster, _CLUSTER_KEYS, "cluster")
    name = check_name(cluster.get("name"), "cluster.name")
    instance = cluster.get("instanceType", "local")
    if not isinstance(instance, str) or not instance or len(instance) > 128:
        raise InvalidInput("must be a non-empty string", "cluster.instanceType")
    workers = cluster.get("workersQuantity", 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise InvalidInput(f"must be a whole number from 1 to {MAX_WORKERS}", "cluster.workersQuantity")
    return {"name": name, "instanceType": instance, "workersQuantity": workers}


def normalize_definition(raw: Any) -> dict[str, Any]:
    """The definition with Bodo's defaults filled in, or ``InvalidInput`` naming the first bad field."""
    top = _mapping(raw, "definition")
    check_text(top, "")
    _no_unknown(top, _TOP_KEYS, "")
    name = check_name(top.get("name"), "name")
    description = top.get("description", "")
    if not isinstance(description, str) or len(description) > 10_000:
        raise InvalidInput("must be a string of at most 10000 characters", "description")
    config = _mapping(top.get("config"), "config")
    _no_unknown(config, _CONFIG_KEYS, "config")
    kind = config.get("type")
    if kind not in JOB_TYPES:
        raise InvalidInput(f"unknown job type {kind!r}; use one of {', '.join(JOB_TYPES)}", "config.type")
    pipeline = None
    script = False
    if kind == "SQL":
        from queue_core.specs.pipelines import is_script

        script = is_script(config)
    if "pipeline" in config:
        from queue_core.specs.pipelines import normalize_pipeline

        if kind != "SQL":
            raise InvalidInput("applies to SQL jobs only", "config.pipeline")
        pipeline = normalize_pipeline(config["pipeline"], script=script)
    if "source" not in config and (pipeline is None or script):
        raise InvalidInput("is required" + (" to fetch the .sql file from" if script else ""), "config.source")
    source = _source(config["source"]) if "source" in config else dict(_NO_SOURCE)
    if "sourceLocation" not in config and pipeline is None:
        raise InvalidInput("is required", "config.sourceLocation")
    location = None
    if "sourceLocation" in config:
        location = check_relative_path(config["sourceLocation"], "config.sourceLocation")
    normalized = {
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
    return {"name": name, "description": description, "config": normalized, "cluster": _cluster(top.get("cluster"))}
