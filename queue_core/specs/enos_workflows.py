"""Workflow files in the EnOS shape (``tasks`` as a list, ``relations``, ``references``), as native ones.

EnOS Batch Processing draws a workflow as task nodes joined by one-directional relations, with
references (prerequisite workflows or jobs) as root nodes. Each task has a type and says what it runs:
a registered resource at a version, a stored definition, or inline settings. This module turns such a
file into the native shape, so one engine, one validation and one normalized spec serve all three
shapes; ``field_of`` maps a native field name back to the EnOS one for error messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from queue_core.errors import InvalidInput
from queue_core.specs import checks

__all__ = ["ENOS_TASK_TYPES", "enos_to_native", "is_enos"]

ENOS_TASK_TYPES = ("SHELL", "PYTHON", "SQL", "DATA_SYNC", "BUILTIN", "EXTERNAL_APP")
# What a task of these types runs, besides a stored definition: its own section (see specs/builtins.py and
# specs/external_apps.py).
_SECTIONS = {"sync": "DATA_SYNC", "builtin": "BUILTIN", "app": "EXTERNAL_APP"}
_TOP_KEYS = {"name", "description", "tasks", "relations", "references", "referenceTimeout", "concurrency", "failFast"}
_REFERENCE_KINDS = ("workflow", "definition")
# Said the same way in both shapes: handed to the native task as they are.
_PASSED_ON = ("args", "envVars", "cluster", "description", "runIf", "pool", "poolSlots", "priority")
_TASK_KEYS = {"name", "type", "resource", "entry", "definition", "settings", *_SECTIONS, "params", *_PASSED_ON}
_RESOURCE_REF = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]{0,127})(?:@(?P<version>[1-9][0-9]{0,8}))?$")


def is_enos(top: Mapping[str, Any]) -> bool:
    """Whether a workflow file is EnOS-shaped: its tasks are a list, or it has relations."""
    return "relations" in top or isinstance(top.get("tasks"), list)


def _resource(value: Any, field: str) -> dict[str, Any]:
    if isinstance(value, str):
        match = _RESOURCE_REF.match(value)
        if match is None:
            raise InvalidInput("must be a resource name, optionally with @VERSION", field)
        version = match.group("version")
        return {"name": match.group("name"), **({"version": int(version)} if version else {})}
    body = checks.mapping(value, field)
    checks.no_unknown(body, {"name", "version"}, field)
    out: dict[str, Any] = {"name": checks.name(body.get("name"), f"{field}.name")}
    if body.get("version") is not None:
        out["version"] = checks.whole_number(body["version"], f"{field}.version", 1)
    return out


def _job(body: Mapping[str, Any], kind: str, field: str) -> dict[str, Any]:
    """The inline job (a definition's ``config``) a resource, settings, sync, built-in or app task runs."""
    if "sync" in body:
        return {"type": kind, "sync": body["sync"]}
    if "builtin" in body:
        return {"type": kind, "builtin": body["builtin"], "params": body.get("params", {})}
    if "app" in body:
        return {"type": kind, "app": body["app"]}
    if "resource" in body:
        job: dict[str, Any] = {
            "type": kind,
            "source": {"type": "RESOURCE", "sourceDef": _resource(body["resource"], f"{field}.resource")},
        }
        if body.get("entry") is not None:
            job["sourceLocation"] = body["entry"]
        return job
    if "entry" in body:
        raise InvalidInput("applies only with resource", f"{field}.entry")
    settings = dict(checks.mapping(body["settings"], f"{field}.settings"))
    if settings.get("type", kind) != kind:
        raise InvalidInput(f"says type {settings['type']!r} but the task is {kind}", f"{field}.settings.type")
    settings["type"] = kind
    return settings


def _task(body: Mapping[str, Any], field: str) -> tuple[str, dict[str, Any]]:
    checks.no_unknown(body, _TASK_KEYS, field)
    name = checks.name(body.get("name"), f"{field}.name")
    if body.get("type") is None:
        raise InvalidInput("is required: one of " + ", ".join(ENOS_TASK_TYPES), f"{field}.type")
    kind = checks.choice(body["type"], ENOS_TASK_TYPES, f"{field}.type", "task type")
    runs = [key for key in ("resource", "definition", "settings", *_SECTIONS) if key in body]
    if len(runs) != 1:
        raise InvalidInput("needs exactly one of resource, definition, settings, sync, builtin or app", field)
    if runs[0] in _SECTIONS and _SECTIONS[runs[0]] != kind:
        raise InvalidInput(f"applies to {_SECTIONS[runs[0]]} tasks only", f"{field}.{runs[0]}")
    if "params" in body and runs != ["builtin"]:
        raise InvalidInput("applies only with builtin", f"{field}.params")
    native: dict[str, Any] = {}
    if runs == ["definition"]:
        native["definition"] = body["definition"]
    else:
        native["job"] = _job(body, kind, field)
    for key in _PASSED_ON:
        if key in body:
            native[key] = body[key]
    return name, native


def _references(value: Any, field: str) -> tuple[list[dict[str, str]], list[str]]:
    """The native references and the names their nodes go by in relations."""
    if value is None:
        return [], []
    if not isinstance(value, list):
        raise InvalidInput("must be a list of {name: NODE, workflow: NAME} or {name: NODE, definition: NAME}", field)
    native: list[dict[str, str]] = []
    names: list[str] = []
    for i, item in enumerate(value):
        where = f"{field}[{i}]"
        item = checks.mapping(item, where)
        checks.no_unknown(item, {"name", *_REFERENCE_KINDS}, where)
        kinds = [k for k in _REFERENCE_KINDS if k in item]
        if len(kinds) != 1:
            raise InvalidInput("needs exactly one of workflow or definition", where)
        target = item[kinds[0]]
        names.append(checks.name(item.get("name", target), f"{where}.name"))
        native.append({kinds[0]: target})
    return native, names


def _relations(value: Any, tasks: Mapping[str, Any], references: list[str]) -> dict[str, list[str]]:
    """Task -> the tasks it depends on, from the relations; a reference may only be a relation's ``from``."""
    depends: dict[str, list[str]] = {name: [] for name in tasks}
    if value is None:
        return depends
    if not isinstance(value, list):
        raise InvalidInput("must be a list of {from: NODE, to: TASK}", "relations")
    seen: set[tuple[str, str]] = set()
    for i, item in enumerate(value):
        where = f"relations[{i}]"
        item = checks.mapping(item, where)
        checks.no_unknown(item, {"from", "to"}, where)
        source, target = checks.name(item.get("from"), f"{where}.from"), checks.name(item.get("to"), f"{where}.to")
        if target in references:
            raise InvalidInput(
                f"points to reference {target!r}; a reference is a root, only ever a relation's from", where
            )
        if target not in tasks:
            raise InvalidInput(f"points to unknown task {target!r}", f"{where}.to")
        if source not in tasks and source not in references:
            raise InvalidInput(f"comes from unknown task or reference {source!r}", f"{where}.from")
        if (source, target) in seen:
            raise InvalidInput(f"repeats the relation {source} -> {target}", where)
        seen.add((source, target))
        if source in tasks:  # a relation from a reference orders nothing inside the run: references gate it all
            depends[target].append(source)
    return depends


def enos_to_native(top: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The EnOS-shaped file as a native one, and native ``tasks.NAME`` -> EnOS ``tasks[i]`` for error fields."""
    checks.no_unknown(top, _TOP_KEYS, "")
    raw_tasks = checks.non_empty_list(top.get("tasks"), "tasks")
    tasks: dict[str, dict[str, Any]] = {}
    fields: dict[str, str] = {}
    for i, body in enumerate(raw_tasks):
        field = f"tasks[{i}]"
        name, native = _task(checks.mapping(body, field), field)
        if name in tasks:
            raise InvalidInput(f"duplicate task name {name!r}", f"{field}.name")
        tasks[name], fields[f"tasks.{name}"] = native, field
    references, reference_names = _references(top.get("references"), "references")
    clash = sorted(set(reference_names) & set(tasks)) or sorted(
        {n for n in reference_names if reference_names.count(n) > 1}
    )
    if clash:
        raise InvalidInput(f"node name {clash[0]!r} is used twice", "references")
    for name, depends in _relations(top.get("relations"), tasks, reference_names).items():
        if depends:
            tasks[name]["depends_on"] = depends
    native = {
        key: top[key] for key in ("name", "description", "referenceTimeout", "concurrency", "failFast") if key in top
    }
    native["tasks"] = tasks
    if references:
        native["references"] = references
    return native, fields
