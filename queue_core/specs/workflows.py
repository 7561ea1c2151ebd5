"""Workflow files, in the native shape (``tasks``), the DataOS shape (``workflow.dag``) and the EnOS shape, validated.

The result is one normalized spec whatever the shape: every task has ``depends_on`` and either a
stored ``definition`` (with an optional pinned version) or an inline ``job`` (a normalized definition).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from queue_core.dag import find_cycle, levels
from queue_core.errors import InvalidInput
from queue_core.specs import checks, conditions
from queue_core.specs.arrays import check_array_size
from queue_core.specs.definitions import check_args, check_env, normalize_definition
from queue_core.specs.enos_workflows import enos_to_native, is_enos
from queue_core.specs.for_each import INNER_KEYS, normalize_for_each
from queue_core.specs.notifications import normalize_notifications
from queue_core.specs.pipelines import check_stack
from queue_core.specs.run_control import MAX_CONCURRENT_RUNS, normalize_run_control
from queue_core.specs.run_if import ALL_SUCCESS, RUN_IF_VALUES, check_relations
from queue_core.specs.tags import normalize_tags

__all__ = ["MAX_TASKS", "N_TO_N", "normalize_workflow", "task_graph"]

MAX_TASKS = 2000
N_TO_N = "N_TO_N"  # a dependency between two array tasks of one size: child i waits for child i
MAX_DEPTH = 250  # levels: each runs after the one before, so a deeper chain only waits longer
MAX_REFERENCE_TIMEOUT_MINUTES = 366 * 24 * 60  # a year
_NATIVE_KEYS = {
    *("name", "description", "tasks", "references", "referenceTimeout", "concurrency", "failFast", "trigger"),
    *("tags", "title", "notifications", "maxConcurrentRuns"),
}
TASK_RUN_CONTROL = ("pool", "poolSlots", "priority")
_TASK_KEYS = {
    *("definition", "job", "condition", "depends_on", "runIf", "array", "args", "envVars", "cluster", "forEach"),
    *("description", "tags"),
    *TASK_RUN_CONTROL,
}
_DATAOS_KEYS = {
    *("name", "version", "type", "tags", "title", "description", "owner", "layer", "workflow", "trigger"),
    "notifications",
}
_DATAOS_WORKFLOW_KEYS = {
    "title",
    "dag",
    "concurrency",
    "failFast",
    "references",
    "referenceTimeout",
    "maxConcurrentRuns",
}
_DAG_KEYS = {"name", "title", "description", "spec", "dependencies"}
# A DataOS task's run settings sit in its ``spec`` (beside ``compute``): pool, poolSlots and priority too.
_SPEC_KEYS = {"stack", "compute", "stackSpec", "tags", "definition", "args", "envVars", *TASK_RUN_CONTROL}
_DEFINITION_REF = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]{0,127})(?:@(?P<version>[1-9][0-9]{0,8}))?$")


def _definition_ref(value: Any, field: str) -> tuple[str, int | None]:
    match = _DEFINITION_REF.match(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidInput("must be a definition name, optionally with @VERSION", field)
    version = match.group("version")
    return match.group("name"), int(version) if version else None


def _inline_job(raw: Any, workflow: str, task: str, field: str) -> dict[str, Any]:
    """An inline job: a whole definition (with ``config``) or just its ``config`` section."""
    job = checks.mapping(raw, field)
    whole = "config" in job
    definition = (
        {**job, "name": job.get("name", f"{workflow}.{task}")}
        if whole
        else {
            "name": f"{workflow}.{task}",
            "config": job,
        }
    )
    try:
        return normalize_definition(definition)
    except InvalidInput as exc:
        inner = exc.field or ""
        if not whole and inner.startswith("config."):
            inner = inner[len("config.") :]
        raise InvalidInput(exc.detail, f"{field}.{inner}" if inner else field) from None


def _task(
    name: str,
    definition: str | None,
    version: int | None,
    job: dict[str, Any] | None,
    depends_on: list[str],
    raw: Mapping[str, Any],
    field: str,
) -> dict[str, Any]:
    cluster = raw.get("cluster")
    extras: dict[str, Any] = {}  # present only when given, so a workflow that uses none keeps its stored shape
    if raw.get("runIf") is not None:
        if raw["runIf"] not in RUN_IF_VALUES:
            raise InvalidInput(f"must be one of {', '.join(RUN_IF_VALUES)}", f"{field}.runIf")
        extras["runIf"] = raw["runIf"]
    if raw.get("condition") is not None:
        conditions.parse(raw["condition"], f"{field}.condition")
        extras["condition"] = raw["condition"]
    if raw.get("array") is not None:  # an array job: its run is the parent of that many children
        extras["array"] = check_array_size(raw["array"], f"{field}.array")
    # The task's own pool, poolSlots and priority over its job's; only when given, like a definition's.
    extras.update(normalize_run_control(raw, field, TASK_RUN_CONTROL))
    task = {
        **extras,
        "definition": definition,
        "definition_version": version,
        "job": job,
        "depends_on": depends_on,
        "args": None if raw.get("args") is None else check_args(raw["args"], f"{field}.args"),
        "envVars": check_env(raw.get("envVars") or {}, f"{field}.envVars"),
        "cluster": None if cluster is None else checks.name(cluster, f"{field}.cluster"),
        "description": checks.text(raw.get("description"), f"{field}.description", optional=True),
    }
    if raw.get("tags") is not None:  # only when given: the task's runs carry them beside the workflow's
        task["tags"] = normalize_tags(raw["tags"], f"{field}.tags")
    return task


def _depends_on(value: Any, field: str) -> tuple[list[str], dict[str, str], list[str]]:
    """The upstream task names, the branch each relation from a ``CONDITION`` task follows, and the upstream
    array tasks followed child by child (``N_TO_N``).

    An entry is ``NAME``, ``NAME:true`` / ``NAME:false``, ``{"task": NAME, "outcome": "true"}`` or
    ``{"task": NAME, "type": "N_TO_N"}``.
    """
    if value is None:
        return [], {}, []
    if isinstance(value, str | dict):
        value = [value]
    if not isinstance(value, list):
        raise InvalidInput("must be a list of task names", field)
    names: list[str] = []
    outcomes: dict[str, str] = {}
    n_to_n: list[str] = []
    for i, entry in enumerate(value):
        if isinstance(entry, dict):
            checks.no_unknown(entry, {"task", "outcome", "type"}, f"{field}[{i}]")
            name, outcome = entry.get("task"), entry.get("outcome")
            if entry.get("type") is not None:
                if entry["type"] != N_TO_N or outcome is not None:
                    raise InvalidInput(f"type must be {N_TO_N} (and takes no outcome)", f"{field}[{i}].type")
                n_to_n.append(str(name))
        elif isinstance(entry, str):
            name, _, outcome = entry.partition(":")
            outcome = outcome or None
        else:
            raise InvalidInput("must be a list of task names", field)
        if not isinstance(name, str):
            raise InvalidInput("must name a task", f"{field}[{i}]")
        if outcome is not None:
            if outcome not in ("true", "false"):
                raise InvalidInput(f"outcome must be true or false, not {outcome!r}", f"{field}[{i}]")
            outcomes[name] = outcome
        names.append(name)
    if len(set(names)) != len(names):
        raise InvalidInput("names a task twice", field)
    return sorted(names), outcomes, sorted(n_to_n)


def _native_tasks(raw: Mapping[str, Any], workflow: str) -> dict[str, dict[str, Any]]:
    tasks_raw = checks.mapping(raw.get("tasks"), "tasks")
    tasks: dict[str, dict[str, Any]] = {}
    for name, body in tasks_raw.items():
        field = f"tasks.{name}"
        checks.name(name, field)
        body = checks.mapping(body, field)
        checks.no_unknown(body, _TASK_KEYS, field)
        for_each = None
        if "forEach" in body:  # the job, its args, variables and cluster are the inner task's
            if any(k in body for k in (*INNER_KEYS, "condition", "array")):
                raise InvalidInput("a for-each task takes its job from forEach.task, and is no array", field)
            for_each, inner = normalize_for_each(body["forEach"], f"{field}.forEach")
            body = {**{k: v for k, v in body.items() if k != "forEach"}, **inner}
        job_field = field if for_each is None else f"{field}.forEach.task"
        if sum(k in body for k in ("definition", "job", "condition")) != 1:
            raise InvalidInput("needs exactly one of definition or job, or a condition", field)
        definition, version, job = None, None, None
        if "definition" in body:
            definition, version = _definition_ref(body["definition"], f"{job_field}.definition")
        elif "job" in body:
            job = _inline_job(body["job"], workflow, name, f"{job_field}.job")
        elif any(k in body for k in ("args", "envVars", "cluster")):
            raise InvalidInput("a condition task runs no job: it takes no args, envVars or cluster", field)
        depends_on, outcomes, n_to_n = _depends_on(body.get("depends_on"), f"{field}.depends_on")
        tasks[name] = _task(name, definition, version, job, depends_on, body, field)
        if outcomes:
            tasks[name]["outcomes"] = outcomes
        if n_to_n:
            tasks[name]["n_to_n"] = n_to_n
        if for_each is not None:
            tasks[name]["forEach"] = for_each
    return tasks


def _dataos_tasks(workflow_section: Mapping[str, Any], workflow: str) -> dict[str, dict[str, Any]]:
    dag = checks.non_empty_list(workflow_section.get("dag"), "workflow.dag")
    tasks: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(dag):
        field = f"workflow.dag[{i}]"
        entry = checks.mapping(entry, field)
        checks.no_unknown(entry, _DAG_KEYS, field)
        name = checks.name(entry.get("name"), f"{field}.name")
        if name in tasks:
            raise InvalidInput(f"duplicate task name {name!r}", f"{field}.name")
        spec = checks.mapping(entry.get("spec"), f"{field}.spec")
        checks.no_unknown(spec, _SPEC_KEYS, f"{field}.spec")
        definition, version, job = None, None, None
        if "definition" in spec:
            definition, version = _definition_ref(spec["definition"], f"{field}.spec.definition")
        else:
            check_stack(spec.get("stack"), f"{field}.spec.stack")
            stack_spec = checks.mapping(spec.get("stackSpec"), f"{field}.spec.stackSpec")
            checks.no_unknown(stack_spec, {"job"}, f"{field}.spec.stackSpec")
            config = {"type": "SQL", "pipeline": stack_spec.get("job")}
            description = checks.text(
                entry.get("description") or entry.get("title"), f"{field}.description", optional=True
            )
            job = _inline_job({"name": name, "description": description, "config": config}, workflow, name, field)
            job["name"] = f"{workflow}.{name}"
        raw_task = {
            "args": spec.get("args"),
            "envVars": spec.get("envVars"),
            "cluster": spec.get("compute"),
            "description": entry.get("description") or entry.get("title"),
            "tags": spec.get("tags"),
            **normalize_run_control(spec, f"{field}.spec", TASK_RUN_CONTROL),  # named where the file has them
        }
        depends, outcomes, n_to_n = _depends_on(entry.get("dependencies"), f"{field}.dependencies")
        if outcomes or n_to_n:
            raise InvalidInput(
                "a branch (NAME:true) or an N_TO_N dependency needs the native workflow shape (tasks)", field
            )
        tasks[name] = _task(name, definition, version, job, depends, raw_task, field)
        # Kept as the file says (only when given: workflows without them keep their normalized form).
        for key, value in (("title", entry.get("title")), ("stack", spec.get("stack"))):
            if value is not None:
                tasks[name][key] = checks.text(value, f"{field}.{'spec.' if key == 'stack' else ''}{key}")
    return tasks


def _references(value: Any, field: str) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput("must be a list of {workflow: NAME} or {definition: NAME}", field)
    out: list[dict[str, str]] = []
    for i, item in enumerate(value):
        item = checks.mapping(item, f"{field}[{i}]")
        if len(item) != 1 or next(iter(item)) not in ("workflow", "definition"):
            raise InvalidInput("must be {workflow: NAME} or {definition: NAME}", f"{field}[{i}]")
        kind, name = next(iter(item.items()))
        ref = {"kind": kind, "name": checks.name(name, f"{field}[{i}].{kind}")}
        if ref in out:
            raise InvalidInput(f"names {kind} {name!r} twice", field)
        out.append(ref)
    return out


def task_graph(spec: Mapping[str, Any]) -> dict[str, list[str]]:
    """Task -> the tasks it depends on."""
    return {name: list(task["depends_on"]) for name, task in spec["tasks"].items()}


def _check_graph(tasks: Mapping[str, Mapping[str, Any]], where: str) -> None:
    for name in sorted(tasks):
        for dep in tasks[name]["depends_on"]:
            if dep not in tasks:
                raise InvalidInput(f"task {name!r} depends on unknown task {dep!r}", where)
    graph = {n: t["depends_on"] for n, t in tasks.items()}
    cycle = find_cycle(graph)
    if cycle is not None:
        raise InvalidInput(f"the tasks form a cycle: {' -> '.join(cycle)}", where)
    depth = len(levels(graph))
    if depth > MAX_DEPTH:
        raise InvalidInput(f"the tasks are {depth} levels deep (a chain of dependencies); at most {MAX_DEPTH}", where)
    check_relations(tasks, where)
    _check_n_to_n(tasks)


def _check_n_to_n(tasks: Mapping[str, Mapping[str, Any]]) -> None:
    """An ``N_TO_N`` dependency joins two array tasks of one size, child i to child i, under ``ALL_SUCCESS``."""
    for name in sorted(tasks):
        task = tasks[name]
        for upstream in task.get("n_to_n", ()):
            field = f"tasks.{name}.depends_on"
            size, other = task.get("array"), tasks[upstream].get("array")
            if size is None or other is None:
                plain = name if size is None else upstream
                raise InvalidInput(f"{N_TO_N} joins two array tasks: task {plain!r} is no array", field)
            if size != other:
                raise InvalidInput(
                    f"{N_TO_N} needs arrays of one size: task {upstream!r} has {other} children, "
                    f"task {name!r} has {size}",
                    field,
                )
            if task.get("runIf", ALL_SUCCESS) != ALL_SUCCESS:
                raise InvalidInput(f"a task with an {N_TO_N} dependency runs under {ALL_SUCCESS} only", field)


def _in_enos_terms(exc: InvalidInput, fields: Mapping[str, str]) -> InvalidInput:
    """The error with a native ``tasks.NAME...`` field named as the EnOS file's ``tasks[i]...``."""
    field = exc.field or ""
    head, _, rest = field.partition(".")
    task, _, tail = rest.partition(".")
    enos = fields.get(f"{head}.{task}")
    if enos is None:
        return exc
    renames = (("job.sourceLocation", "entry"), ("job.source", "resource"), ("job.sync", "sync"),
               ("job.builtin", "builtin"), ("job.params", "params"), ("job.app", "app"),
               ("job", "settings"))  # fmt: skip
    for native, said in renames:
        if tail == native or tail.startswith(native + "."):
            tail = said + tail[len(native) :]
            break
    return InvalidInput(exc.detail, f"{enos}.{tail}" if tail else enos)


def normalize_workflow(raw: Any) -> dict[str, Any]:
    """The workflow file as one normalized spec, or ``InvalidInput`` naming the first bad field.

    Stored definitions and referenced workflows are checked against the log by the caller.
    """
    top = checks.mapping(raw, "workflow file")
    checks.unicode_text(top, "")
    name = checks.name(top.get("name"), "name")
    if top.get("type") == "workflow" or "workflow" in top:
        checks.no_unknown(top, _DATAOS_KEYS, "")
        section = checks.mapping(top.get("workflow"), "workflow")
        checks.no_unknown(section, _DATAOS_WORKFLOW_KEYS, "workflow")
        tasks = _dataos_tasks(section, name)
        settings, where, prefix = section, "workflow.dag", "workflow."
        label = top.get("version")
        description = checks.text(
            top.get("description") or top.get("title") or section.get("title"), "description", optional=True
        )
    else:
        fields: dict[str, str] = {}
        if is_enos(top):
            top, fields = enos_to_native(top)
        checks.no_unknown(top, _NATIVE_KEYS, "")
        try:
            tasks = _native_tasks(top, name)
        except InvalidInput as exc:
            raise _in_enos_terms(exc, fields) from None
        settings, where, prefix, label = top, "tasks", "", None
        description = checks.text(top.get("description"), "description", optional=True)
    if len(tasks) > MAX_TASKS:
        raise InvalidInput(f"has {len(tasks)} tasks; at most {MAX_TASKS}", where)
    if not tasks:
        raise InvalidInput("must name at least one task", where)
    _check_graph(tasks, where)
    references = _references(settings.get("references"), f"{prefix}references")
    if {"kind": "workflow", "name": name} in references:
        # A run waits for a succeeded run of each referenced workflow for its logical date: of itself, never.
        raise InvalidInput(f"names workflow {name!r} itself: its runs would wait for themselves", f"{prefix}references")
    reference_timeout = settings.get("referenceTimeout")
    if reference_timeout is not None:
        if not references:
            raise InvalidInput("applies only with references", f"{prefix}referenceTimeout")
        minutes = checks.number(reference_timeout, f"{prefix}referenceTimeout")
        if not 0 < minutes <= MAX_REFERENCE_TIMEOUT_MINUTES:
            raise InvalidInput(
                f"must be minutes above 0 and at most {MAX_REFERENCE_TIMEOUT_MINUTES}", f"{prefix}referenceTimeout"
            )
    concurrency, fail_fast = settings.get("concurrency"), settings.get("failFast")
    if concurrency is not None:
        checks.whole_number(concurrency, f"{prefix}concurrency", 1, MAX_TASKS)
    spec = {
        "name": name,
        "description": description,
        "label": None if label is None else str(label),
        "tasks": tasks,
        "references": references,
        "referenceTimeout": None if reference_timeout is None else float(reference_timeout),
        "concurrency": concurrency,
        "failFast": False if fail_fast is None else checks.boolean(fail_fast, f"{prefix}failFast"),
    }
    # Only when given, so that a workflow applied again without them is not a new version.
    if top.get("tags") is not None:
        spec["tags"] = normalize_tags(top["tags"])
    if top.get("title") is not None:
        spec["title"] = checks.text(top["title"], "title")
    if "notifications" in top:
        spec["notifications"] = normalize_notifications(top["notifications"], "notifications")
    if settings.get("maxConcurrentRuns") is not None:  # runs of the workflow at once; beside concurrency
        field = f"{prefix}maxConcurrentRuns"
        spec["maxConcurrentRuns"] = checks.whole_number(settings["maxConcurrentRuns"], field, 1, MAX_CONCURRENT_RUNS)
    if "trigger" in top:  # beside ``name``; only when given: workflows without one keep their normalized form
        from queue_core.specs.triggers import normalize_trigger

        spec["trigger"] = normalize_trigger(top["trigger"])
    return spec
