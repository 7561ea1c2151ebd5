"""Writing job files and definitions into a test's workspace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


def job_file(workspace: Path, name: str, body: str, folder: str = "jobs") -> str:
    """Write a job file under ``workspace/folder`` and return its name."""
    directory = workspace / folder
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(body)
    return name


def definition(
    name: str,
    location: str,
    kind: str = "SHELL",
    retries: int = 0,
    delay: float = 0.0,
    retry_on_timeout: bool = False,
    timeout: float = 1.0,
    args: str = "",
    env: dict[str, str] | None = None,
    cluster: str | None = "default",
    folder: str = "jobs",
) -> dict[str, Any]:
    """A Bodo-style definition of a workspace job."""
    raw: dict[str, Any] = {
        "name": name,
        "config": {
            "source": {"type": "WORKSPACE", "sourceDef": {"path": folder}},
            "type": kind,
            "sourceLocation": location,
            "args": args,
            "retryStrategy": {
                "numRetries": retries,
                "delayBetweenRetries": delay,
                "retryOnTimeout": retry_on_timeout,
            },
            "timeout": timeout,
            "envVars": env or {},
        },
    }
    if cluster:
        raw["cluster"] = {"name": cluster}
    return raw


def shell_task(workspace: Path, name: str, body: str = "true\n", **extra: Any) -> dict[str, Any]:
    """An inline SHELL job for a native workflow file."""
    location = job_file(workspace, f"{name}.sh", body)
    return {"job": {"type": "SHELL", "source": {"type": "WORKSPACE", "sourceDef": {"path": "jobs"}},
                    "sourceLocation": location, "timeout": 1}, **extra}  # fmt: skip


def native(name: str, tasks: dict[str, Any], **settings: Any) -> dict[str, Any]:
    return {"name": name, "tasks": tasks, **settings}


def source_definition(
    name: str, source: dict[str, Any], location: str, retries: int | None = None, **config: Any
) -> dict[str, Any]:
    """A SHELL definition whose code comes from ``source`` (``{"type": "GIT" | "S3" | "RESOURCE" | ...,
    "sourceDef": {...}}``); ``retries``, when given, retries with no delay; ``config`` adds or overrides keys."""
    raw: dict[str, Any] = {"source": source, "type": "SHELL", "sourceLocation": location}
    if retries is not None:
        raw["retryStrategy"] = {"numRetries": retries, "delayBetweenRetries": 0}
    return {"name": name, "config": {**raw, "timeout": 1, **config}, "cluster": {"name": "default"}}


def sql_definition(
    name: str,
    steps: list[tuple[str, str]] | None = None,
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[dict[str, Any]] | None = None,
    timeout: float = 1,
    config: dict[str, Any] | None = None,
    **pipeline: Any,
) -> dict[str, Any]:
    """A SQL definition: an inline pipeline of ``steps`` ((name, sql), in one sequence) reading ``inputs`` and
    writing ``outputs``; a part left None is left out. ``config`` adds keys beside the pipeline (a ``.sql``
    script's ``source`` and ``sourceLocation``), ``pipeline`` keys to the pipeline (``explain=True``)."""
    parts: dict[str, Any] = {}
    if inputs is not None:
        parts["inputs"] = inputs
    if steps is not None:
        parts["steps"] = [{"sequence": [{"name": step, "sql": sql} for step, sql in steps]}]
    if outputs is not None:
        parts["outputs"] = outputs
    body = {"type": "SQL", "timeout": timeout, "pipeline": {**parts, **pipeline}, **(config or {})}
    return {"name": name, "config": body, "cluster": {"name": "default"}}


def sql_output(step: str, dataset: str, fmt: str, mode: str = "overwrite", **options: Any) -> dict[str, Any]:
    """What a SQL pipeline writes: ``step``'s result to ``dataset`` in ``fmt``, with save mode ``mode``."""
    return {"name": step, "dataset": dataset, "format": fmt, "options": {"saveMode": mode, **options}}


def resource_definition(name: str, resource: str, location: str, version: int | None = None) -> dict[str, Any]:
    """A SHELL definition running ``location`` in resource ``resource`` (its latest version, or ``version``)."""
    sdef: dict[str, Any] = {"name": resource} if version is None else {"name": resource, "version": version}
    return source_definition(name, {"type": "RESOURCE", "sourceDef": sdef}, location)


def write_definition_file(directory: Path, raw: Any, suffix: str = ".json", stem: str = "def") -> Path:
    """``raw`` written to ``directory/STEM.SUFFIX``: JSON for ``.json``, else YAML; its path."""
    path = directory / f"{stem}{suffix}"
    path.write_text(json.dumps(raw) if suffix == ".json" else yaml.safe_dump(raw))
    return path
