"""The console's backfill pages: every backfill, and one with its progress by state and a page of its ticks' runs."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from queue_core.console.rendering import common, console_of, render
from queue_core.errors import InvalidInput
from queue_core.specs import checks

__all__ = ["PROGRESS", "backfill", "backfills", "progress"]

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
NOTICES = {"cancelled": "Backfill cancelled: no more ticks are submitted, and its runs still going were cancelled."}
REFUSED, WAITING = "REFUSED", "WAITING"  # a tick whose submission was refused; one not submitted yet
PROGRESS = ("SUCCEEDED", "FAILED", "CANCELLED", "RUNNING", "PENDING", REFUSED, WAITING)  # the bar's order


def _present(request: Request) -> None:
    if request.query_params.get("as_of", "").strip():
        raise InvalidInput("a backfill is shown as it is now", "as_of")


def backfills(request: Request) -> Response:
    _present(request)
    found = console_of(request).client.list_backfills()
    return render(request, "backfills.html", backfills=found, **common(request, "/backfills", NOTICES))


def state_of(entry: dict[str, Any]) -> str:
    """A submitted tick's state: its run's status, or REFUSED when its submission was refused."""
    if entry["run"] is None:
        return REFUSED
    return entry["status"] or "PENDING"  # a run the read models have not folded yet was just submitted


def progress(doc: dict[str, Any]) -> dict[str, int]:
    """How many of the backfill's ticks are in each state, in ``PROGRESS`` order (only those with any)."""
    counts = dict.fromkeys(PROGRESS, 0)
    for entry in doc["runs"]:
        counts[state_of(entry)] += 1
    counts[WAITING] = len(doc["waiting"])
    return {state: n for state, n in counts.items() if n}


def _whole(request: Request, name: str, default: int, most: int | None = None) -> int:
    given = request.query_params.get(name, "").strip()
    if not given:
        return default
    if not given.isdigit():
        raise InvalidInput(f"{given[:40]!r} is not a whole number", name)
    value = int(given)
    if most is not None and not 1 <= value <= most:
        raise InvalidInput(f"must be a whole number from 1 to {most}", name)
    return value


def backfill(request: Request) -> Response:
    _present(request)
    client = console_of(request).client
    doc = client.get_backfill(request.path_params["backfill_id"])
    given = request.query_params.get("status", "").strip().upper()
    status = checks.choice(given, PROGRESS, "status") if given else None
    size, start = _whole(request, "size", PAGE_SIZE, MAX_PAGE_SIZE), _whole(request, "start", 0)
    rows = [{**e, "state": state_of(e)} for e in doc["runs"]]
    rows += [{"tick": t, "logical_date": None, "run": None, "message": None, "state": WAITING} for t in doc["waiting"]]
    kept = [row for row in rows if status is None or row["state"] == status]
    params = {k: v for k, v in (("status", status), ("size", None if size == PAGE_SIZE else size)) if v}

    def link(at: int) -> str:
        return "?" + urlencode({**params, **({"start": at} if at else {})}) + "#runs"

    later = start + size
    pager = {
        "previous": link(max(0, start - size)) if start else None,
        "next": link(later) if later < len(kept) else None,
    }
    running = doc["status"] == "RUNNING"
    return render(
        request,
        "backfill.html",
        backfill=doc,
        counts=progress(doc),
        rows=kept[start:later],
        first=start,
        matched=len(kept),
        status=status,
        states=PROGRESS,
        pager=pager,
        can_cancel=running,
        live="any" if running else None,  # its runs, and its own events (BackfillFinished): what moves it
        live_interval=2000,
        **common(request, "/backfills", NOTICES),
    )
