"""What every console view shares: the client, the token and templates, and how a page is rendered."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from queue_core.client import Client
from queue_core.console.auth import ConsoleToken
from queue_core.console.humane import duration, elapsed, exact, moment, zone
from queue_core.console.logwatch import LogWatch
from queue_core.errors import InvalidInput
from queue_core.readmodels.oracle import quarantine_line

__all__ = ["NAV", "TZ_COOKIE", "Console", "common", "console_of", "render", "viewer_zone"]

TZ_COOKIE = "jobledger_tz"
NAV = (
    ("/", "Overview"),
    ("/runs", "Runs"),
    ("/workflows", "Workflows"),
    ("/definitions", "Definitions"),
    ("/schedules", "Schedules"),
    ("/backfills", "Backfills"),
    ("/clusters", "Clusters"),
    ("/events", "Audit"),
)


class Console:
    """What every view needs: the client, the token and the templates."""

    def __init__(self, client: Client, token: ConsoleToken) -> None:
        self.client = client
        self.token = token
        env = Environment(loader=PackageLoader("queue_core.console", "templates"), autoescape=select_autoescape())
        self.templates = Jinja2Templates(env=env)
        self.watch = LogWatch(client.store)


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def _here(request: Request) -> str:
    """The page to come back to after signing in: this one, or for a refused POST the page it came from."""
    if request.method == "GET":
        return request.url.path
    referer = urlsplit(request.headers.get("referer", ""))
    same_site = referer.netloc == request.url.netloc and referer.path.startswith("/")
    return referer.path if same_site else "/runs"


def viewer_zone(request: Request) -> tzinfo:
    """The time zone the viewer chose (a cookie set by ``/timezone``); UTC if none, or if it is not one."""
    try:
        return zone(request.cookies.get(TZ_COOKIE, ""))
    except InvalidInput:
        return UTC


def _times(request: Request) -> dict[str, Any]:
    """What templates show times with: ``when`` (relative, exact on hover), ``exact``, ``took`` and ``dur``."""
    now, tz = datetime.now(UTC), viewer_zone(request)
    return {
        "now": now,
        "tz_name": getattr(tz, "key", "UTC"),
        "when": lambda text: moment(text, now, tz),
        "exact": lambda text: exact(text, tz),
        "took": lambda start, end=None: duration(elapsed(start, end) if end else None),
        "dur": duration,
    }


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    """A page: the template with the navigation, who is signed in, and the form's CSRF value."""
    console = console_of(request)
    signed_in = console.token.signed_in(request)
    return console.templates.TemplateResponse(
        request,
        template,
        {
            "nav": NAV,
            "here": _here(request),
            "writable": console.token.enabled,
            "signed_in": signed_in,
            "csrf": console.token.csrf() if signed_in else "",
            **_times(request),
            **context,
        },
        status_code=status_code,
    )


def common(request: Request, active: str, notices: dict[str, str]) -> dict[str, Any]:
    """What every page's header shows: the active tab, the as-of banner, a notice after a write, what is quarantined."""
    as_of = request.query_params.get("as_of", "").strip()
    quarantined = [quarantine_line(entry) for entry in console_of(request).client.read_models.quarantined()]
    notice = notices.get(request.query_params.get("done", ""))
    return {"active": active, "as_of": as_of, "notice": notice, "quarantined": quarantined}
