"""The console's read-only pages: runs, a run, workflows, a workflow run, definitions, schedules, clusters, audit."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from queue_core.console.arrays import children_counts, children_page, place_of
from queue_core.console.charts import duration_chart
from queue_core.console.dag_svg import children_line, render_svg
from queue_core.console.gantt import KINDS, bars, gantt_svg
from queue_core.console.humane import zone
from queue_core.console.insights import history, task_grid
from queue_core.console.queries import cluster_state, events_page, runs_page
from queue_core.console.rendering import TZ_COOKIE, common, console_of, render
from queue_core.console.search import RunFilter, search_runs
from queue_core.domain.runs import STATUSES, TERMINAL
from queue_core.domain.workflow_runs import is_going
from queue_core.domain.workflows import workflow_spec_of
from queue_core.errors import InvalidInput
from queue_core.eventlog.events import event_types
from queue_core.eventlog.positions import as_position
from queue_core.readmodels.history import diff_specs
from queue_core.specs import checks
from queue_core.specs.tags import check_tag
from queue_core.timefmt import parse_utc

__all__ = [
    "clusters",
    "definition",
    "definitions",
    "events",
    "run",
    "run_logs",
    "runs",
    "schedule",
    "schedules",
    "timezone",
    "workflow",
    "workflow_graph",
    "workflow_run",
    "workflows",
]

PAGE_SIZE = 50
GIVEN_UP_SHOWN = 10  # notifications given up, listed under the runs
MAX_PAGE_SIZE = 200
RUN_EVENTS = 200  # a run's events shown on its page, the newest; the audit view has them all
LOG_BLOCK_MS = 1000
_LOG_POSITION = re.compile(r"^\d+(-\d+)?$")
_FULL_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TZ_COOKIE_SECONDS = 365 * 86400
NOTICES = {
    "cancelled": "Cancelled.",
    "rerun": "Rerun requested.",
    "repaired": "Repair requested: every task that did not succeed runs again.",
    "signed-in": "Signed in: you can cancel, rerun and repair.",
}


# -- query parameters -------------------------------------------------------------------------


def _as_of(request: Request) -> str:
    given = request.query_params.get("as_of", "").strip()
    return as_position(given, "as of") if given else "+"


def _number(request: Request, name: str) -> float | None:
    given = request.query_params.get(name)
    if not given:
        return None
    try:
        return float(given)
    except ValueError:
        raise InvalidInput(f"{given!r} is not a number", name) from None


def _size(request: Request) -> int:
    size = _number(request, "size")
    if size is None:
        return PAGE_SIZE
    if not 1 <= size <= MAX_PAGE_SIZE or size != int(size):
        raise InvalidInput(f"must be a whole number from 1 to {MAX_PAGE_SIZE}", "size")
    return int(size)


def _status(request: Request, allowed: tuple[str, ...] = STATUSES) -> str | None:
    given = request.query_params.get("status", "").strip().upper()
    return checks.choice(given, allowed, "status") if given else None


def _common(request: Request, active: str) -> dict[str, Any]:
    return common(request, active, NOTICES)


def _query(**params: Any) -> str:
    return "?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})


# -- runs -------------------------------------------------------------------------------------


def _wanted(request: Request) -> RunFilter:
    return RunFilter.from_params(request.query_params)


def _id_shortcut(client: Any, text: str) -> str | None:
    """Where a search for a whole run or workflow run id goes: straight to it."""
    if not _FULL_ID.match(text):
        return None
    if client.read_models.get("runs", text) is not None:
        return f"/runs/{text}"
    if client.read_models.get("workflow_runs", text) is not None:
        return f"/workflow-runs/{text}"
    return None


def runs(request: Request) -> Response:
    client = console_of(request).client
    wanted, size = _wanted(request), _size(request)
    if wanted.tag:
        check_tag(wanted.tag)
    status, definition = wanted.status or None, wanted.definition or None
    as_of = _as_of(request)
    filters = {**wanted.params(), "size": None if size == PAGE_SIZE else size}
    context = _common(request, "/runs")
    if as_of != "+":
        if wanted.needs_search:
            raise InvalidInput("as of a past point, runs are filtered by status and definition only", "as_of")
        found = client.list_runs(status=status, definition=definition, limit=size, as_of=as_of)
        return render(request, "runs.html", runs=found, filters=filters, page=None, **context)
    client.read_models.catch_up()
    shortcut = _id_shortcut(client, wanted.q)
    if shortcut is not None:
        return RedirectResponse(shortcut, status_code=303)
    older, newer = _number(request, "before"), _number(request, "after")
    searched: int | None = None
    if wanted.needs_search:
        found_page = search_runs(client.read_models, wanted, size, older_than=older)
        page: Any = found_page
        shown, searched = found_page.runs, found_page.scanned
        pager = {
            "newest": _query(**filters) if older is not None else None,
            "newer": None,
            "older": _query(**filters, before=repr(found_page.older)) if found_page.older is not None else None,
        }
    else:
        page = runs_page(client.read_models, status, definition, size, older_than=older, newer_than=newer)
        shown = page.runs
        pager = {
            "newest": _query(**filters) if page.newer is not None else None,
            "newer": _query(**filters, after=repr(page.newer)) if page.newer is not None else None,
            "older": _query(**filters, before=repr(page.older)) if page.older is not None else None,
        }
    return render(
        request,
        "runs.html",
        runs=shown,
        filters=filters,
        filters_set=bool(wanted.params()),
        page=page,
        pager=pager,
        searched=searched,
        definitions=sorted({d["name"] for d in client.list_definitions()}),
        workflows=sorted(w["name"] for w in client.list_workflows()),
        clusters=[c["name"] for c in client.list_clusters()],
        given_up=client.notifications(failed=True, limit=GIVEN_UP_SHOWN),  # destinations failing for good
        live="runs",
        **context,
    )


def _timeline_bars(phases: list[Any]) -> list[dict[str, Any]]:
    total = sum(p.seconds for p in phases) or 1.0
    return [{**p.__dict__, "pct": max(0.5, 100 * p.seconds / total)} for p in phases]


def _children(request: Request, run_id: str, as_of: str) -> dict[str, Any] | None:
    """An array parent's children (a for-each task's too): counts by state, and one page of them."""
    client = console_of(request).client
    array = children_counts(client, run_id, as_of)
    if array is None:
        return None
    status, size = _status(request), _size(request)
    start = _number(request, "start") or 0
    if start < 0 or start != int(start):
        raise InvalidInput("must be a whole number, 0 or more", "start")
    page = children_page(client, run_id, array["size"], int(start), size, status, as_of)
    params = {"status": status, "size": None if size == PAGE_SIZE else size, "as_of": as_of if as_of != "+" else None}
    later = page.start + size
    pager = {
        "first": _query(**params) + "#children" if page.start > 0 else None,
        "previous": _query(**params, start=max(0, page.start - size) or None) + "#children" if page.start else None,
        "next": _query(**params, start=later) + "#children" if later < page.matched else None,
        "last": _query(**params, start=(page.matched - 1) // size * size) + "#children"
        if later < page.matched
        else None,
    }
    return {**array, "page": page, "status": status, "pager": pager}


def run(request: Request) -> Response:
    client = console_of(request).client
    run_id, as_of = request.path_params["run_id"], _as_of(request)
    detail = client.run_detail(run_id, as_of)
    phases = client.run_timeline(run_id, as_of)
    # The newest only: an array parent notes its children's ends, up to one event each.
    events_of_run = client.events(aggregate=run_id, until=None if as_of == "+" else as_of, limit=RUN_EVENTS + 1)
    children = _children(request, run_id, as_of)
    return render(
        request,
        "run.html",
        run=detail,
        active_run=detail["status"] not in TERMINAL and as_of == "+",
        timeline=_timeline_bars(phases),
        events=[(rec, orjson.dumps(rec.event.to_data()).decode()) for rec in events_of_run[-RUN_EVENTS:]],
        more_events=len(events_of_run) > RUN_EVENTS,
        children=children,
        place=place_of(client, detail),
        # An array parent moves as its children do: their ids are its own with "_INDEX" after it.
        live=f"ids:{run_id} {run_id}_*" if children else f"ids:{run_id}",
        live_interval=2000 if children else None,
        **_common(request, "/runs"),
    )


def run_logs(request: Request) -> Response:
    """New log lines after ``after`` (waiting up to a second for the first), and whether the run has ended."""
    client = console_of(request).client
    run_id = request.path_params["run_id"]
    after = request.query_params.get("after", "0")
    if not _LOG_POSITION.match(after):
        raise InvalidInput(f"{after!r} is not a log position", "after")
    current = client.get_run(run_id)  # before the lines: once it has ended, no line can come after these
    lines = client.run_log.read(run_id, after, count=1000)
    if not lines and current["status"] not in TERMINAL:
        lines = client.run_log.follow(run_id, after, block_ms=LOG_BLOCK_MS)
    marker = client.run_log.marker(run_id) if after == "0" and lines else None
    shown = [marker, *lines] if marker is not None else lines
    return JSONResponse(
        {
            "lines": [{"time": x.time, "attempt": x.attempt, "stream": x.stream, "line": x.line} for x in shown],
            "after": lines[-1].position if lines else after,
            "status": current["status"],
            "reason": current["reason"],
            "ended": current["status"] in TERMINAL and not lines,
        }
    )


# -- workflows --------------------------------------------------------------------------------


def workflows(request: Request) -> Response:
    client = console_of(request).client
    name = request.query_params.get("workflow", "").strip() or None
    status = _status(request)
    found = client.list_workflow_runs(name, status, limit=_size(request))
    return render(
        request,
        "workflows.html",
        workflows=client.list_workflows(),
        runs=found,
        filters={"workflow": name, "status": status},
        **_common(request, "/workflows"),
    )


def workflow(request: Request) -> Response:
    client = console_of(request).client
    doc = client.get_workflow(request.path_params["name"])
    diff, old, new = _diff(request, lambda v: workflow_spec_of(doc, v))
    client.read_models.catch_up()
    grid_tasks, grid_runs = task_grid(client.read_models, doc["name"])
    return render(
        request,
        "workflow.html",
        workflow=doc,
        versions=[(v, orjson.dumps(v["spec"], option=orjson.OPT_INDENT_2).decode()) for v in doc["versions"]],
        diff=diff,
        old=old,
        new=new,
        runs=client.list_workflow_runs(doc["name"], None, limit=20),
        grid_tasks=grid_tasks,
        grid_runs=grid_runs,
        live="runs",
        **_common(request, "/workflows"),
    )


def workflow_run(request: Request) -> Response:
    client = console_of(request).client
    run_id, as_of = request.path_params["run_id"], _as_of(request)
    view = client.get_workflow_run(run_id, as_of)
    live = as_of == "+"
    run_ids = [r for task in view["tasks"].values() for r in task["runs"]]
    docs = _runs_of(client, run_ids, as_of)
    arrays = _arrays(client, view, docs, as_of)
    # An array task's children move its counts: their ids are its run's with "_INDEX" after it.
    children = [f"{view['tasks'][name]['run']}_*" for name in arrays]
    return render(
        request,
        "workflow_run.html",
        view=view,
        svg=render_svg(view, arrays=arrays),
        arrays={name: {**array, "line": children_line(array)} for name, array in arrays.items()},
        gantt=gantt_svg(bars(view, docs), _moment(view, as_of)),
        gantt_kinds=KINDS,
        live="ids:" + " ".join([run_id, *run_ids, *children]) if live else None,
        can_cancel=live and view["status"] not in TERMINAL,
        can_repair=live
        and not is_going(view)
        and any(t["status"] in ("FAILED", "CANCELLED", "UPSTREAM_FAILED") for t in view["tasks"].values()),
        can_rerun=live and not is_going(view),
        **_common(request, "/workflows"),
    )


def _runs_of(client: Any, run_ids: list[str], as_of: str) -> dict[str, dict[str, Any]]:
    """The task runs' documents: from the read models now, folded from the log as of a past point."""
    if as_of == "+":
        client.read_models.catch_up()
        return {doc["id"]: doc for doc in client.read_models.get_many("runs", run_ids) if doc is not None}
    return {run_id: client.get_run(run_id, as_of) for run_id in run_ids}


def _arrays(client: Any, view: dict[str, Any], docs: dict[str, dict[str, Any]], as_of: str) -> dict[str, Any]:
    """Task -> ``{"size", "counts"}`` of the tasks whose current run is an array parent (a for-each task's too)."""
    found = {}
    for name, task in view["tasks"].items():
        doc = docs.get(task["run"]) if task["run"] else None
        if doc is not None and doc.get("array") is not None:  # a run folded before arrays has no key
            array = children_counts(client, task["run"], as_of)
            if array is not None:
                found[name] = array
    return found


def _moment(view: dict[str, Any], as_of: str) -> datetime:
    """Where a Gantt's open bars end: now, or as of a past point the last thing the run recorded."""
    if as_of == "+":
        return datetime.now(UTC)
    times = [t for task in view["tasks"].values() for t in (task["submitted_at"], task["finished_at"]) if t]
    return max((parse_utc(t) for t in times), default=datetime.now(UTC))


def workflow_graph(request: Request) -> Response:
    """The picture alone, for the page to swap in while the run goes on; the headers say whether it still does."""
    client = console_of(request).client
    view = client.get_workflow_run(request.path_params["run_id"])
    run_ids = [task["run"] for task in view["tasks"].values() if task["run"]]
    arrays = _arrays(client, view, _runs_of(client, run_ids, "+"), "+")
    headers = {"X-Workflow-Status": view["status"], "X-Workflow-Active": "1" if is_going(view) else "0"}
    headers["Cache-Control"] = "no-store"
    return Response(render_svg(view, arrays=arrays), media_type="image/svg+xml", headers=headers)


# -- definitions ------------------------------------------------------------------------------


def _diff(request: Request, spec_of: Any) -> tuple[list[Any] | None, int | None, int | None]:
    old, new = _number(request, "old"), _number(request, "new")
    if old is None or new is None:
        return None, None, None
    return diff_specs(spec_of(int(old)), spec_of(int(new))), int(old), int(new)


def definitions(request: Request) -> Response:
    client = console_of(request).client
    include_deleted = request.query_params.get("all") == "1"
    return render(
        request,
        "definitions.html",
        definitions=client.list_definitions(include_deleted=include_deleted),
        include_deleted=include_deleted,
        **_common(request, "/definitions"),
    )


def definition(request: Request) -> Response:
    from queue_core.domain.definitions import spec_of

    client = console_of(request).client
    as_of = _as_of(request)
    doc = client.get_definition(request.path_params["name"], as_of=as_of)
    diff, old, new = _diff(request, lambda v: spec_of(doc, v))
    recent = None
    if as_of == "+":  # the history is of now: a definition as of a past point shows its versions only
        client.read_models.catch_up()
        recent = history(client.read_models, doc["name"])
    return render(
        request,
        "definition.html",
        definition=doc,
        history=recent,
        duration_chart=duration_chart(recent.runs, recent.median, recent.p95) if recent else None,
        live="runs" if recent else None,
        versions=[(v, orjson.dumps(v["spec"], option=orjson.OPT_INDENT_2).decode()) for v in doc["versions"]],
        diff=diff,
        old=old,
        new=new,
        **_common(request, "/definitions"),
    )


# -- the viewer's time zone ------------------------------------------------------------------


def timezone(request: Request) -> Response:
    """Remember the time zone exact times are shown in (a cookie), then go back to the page."""
    given = request.query_params.get("tz", "").strip()
    zone(given)  # InvalidInput, naming tz, for one that is not a zone
    target = request.query_params.get("next", "/")
    target = target if target.startswith("/") and not target.startswith("//") else "/"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(TZ_COOKIE, given or "UTC", max_age=TZ_COOKIE_SECONDS, path="/", samesite="lax")
    return response


# -- schedules ------------------------------------------------------------------------------------


def schedules(request: Request) -> Response:
    found = console_of(request).client.list_schedules()
    return render(request, "schedules.html", schedules=found, **_common(request, "/schedules"))


def schedule(request: Request) -> Response:
    client = console_of(request).client
    found = client.get_schedule(request.path_params["name"])
    made = [b for b in client.list_backfills() if b["schedule"] == found["id"]]
    return render(request, "schedule.html", schedule=found, backfills=made, **_common(request, "/schedules"))


# -- clusters and the audit view --------------------------------------------------------------


def clusters(request: Request) -> Response:
    client = console_of(request).client
    rows = [{**cluster, **cluster_state(client.redis, cluster["name"])} for cluster in client.list_clusters()]
    pools = client.list_pools()
    return render(request, "clusters.html", clusters=rows, pools=pools, **_common(request, "/clusters"))


def _link(rec: Any, at: str) -> str | None:
    """Where an event's aggregate is shown, as it was right after the event."""
    kind = rec.type
    if kind.startswith("Run") or kind == "DatasetWritten":
        return f"/runs/{rec.aggregate}?as_of={at}"
    if kind.startswith(("WorkflowRun", "Task")) or kind == "ReferenceSatisfied":
        return f"/workflow-runs/{rec.aggregate}?as_of={at}"
    if kind.startswith("Definition"):
        return f"/definitions/{rec.aggregate}?as_of={at}"
    if kind.startswith("Workflow"):
        return f"/workflows/{rec.event.name}"
    if kind.startswith("Backfill"):
        return f"/backfills/{rec.aggregate}"
    if kind.startswith("Schedule"):
        return f"/schedules/{rec.aggregate}"
    return None


def events(request: Request) -> Response:
    client = console_of(request).client
    params = request.query_params
    kind = params.get("type", "").strip() or None
    if kind and kind not in event_types():
        raise InvalidInput(f"{kind!r} is not an event type", "type")
    aggregate = params.get("aggregate", "").strip() or None
    since = as_position(params["since"], "since", end=False) if params.get("since", "").strip() else "-"
    until = _as_of(request)
    before = params.get("before", "").strip()
    if before:
        until = "(" + as_position(before, "before")
    size = _size(request)
    page = events_page(client.store, size, kind, aggregate, since, until)
    filters = {k: params.get(k, "").strip() or None for k in ("type", "aggregate", "since", "as_of")}
    rows = [(rec, orjson.dumps(rec.event.to_data()).decode(), _link(rec, rec.position)) for rec in page.events]
    return render(
        request,
        "events.html",
        rows=rows,
        filters=filters,
        types=sorted(event_types()),
        older=_query(**filters, before=page.older) if page.older else None,
        scanned=page.scanned,
        **_common(request, "/events"),
    )
