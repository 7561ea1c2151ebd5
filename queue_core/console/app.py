"""The console's ASGI app: its routes, how a page is rendered, and how an error becomes a page (never a traceback)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from queue_core.client import Client
from queue_core.console.auth import ConsoleToken
from queue_core.errors import AlreadyExists, AlreadyTerminal, InvalidInput, JobledgerError, NotFound

__all__ = ["Console", "create_app", "render"]

log = logging.getLogger("jobledger.console")

NAV = (
    ("/runs", "Runs"),
    ("/workflows", "Workflows"),
    ("/definitions", "Definitions"),
    ("/schedules", "Schedules"),
    ("/clusters", "Clusters"),
    ("/events", "Audit"),
)
_STATUS_OF_ERROR = {InvalidInput: 400, NotFound: 404, AlreadyTerminal: 409, AlreadyExists: 409}


class Console:
    """What every view needs: the client, the token and the templates."""

    def __init__(self, client: Client, token: ConsoleToken) -> None:
        self.client = client
        self.token = token
        env = Environment(loader=PackageLoader("queue_core.console", "templates"), autoescape=select_autoescape())
        self.templates = Jinja2Templates(env=env)


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
            **context,
        },
        status_code=status_code,
    )


async def _jobledger_error(request: Request, exc: Exception) -> Response:
    status = next((code for kind, code in _STATUS_OF_ERROR.items() if isinstance(exc, kind)), 400)
    return render(request, "error.html", status_code=status, message=str(exc), title="Refused")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = "no such page" if exc.status_code == 404 else str(exc.detail)
    return render(request, "error.html", status_code=exc.status_code, message=message, title="Not found")


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("error serving %s", request.url.path, exc_info=exc)
    return PlainTextResponse("internal error: the console's log has the details", status_code=500)


def _home(request: Request) -> Response:
    return RedirectResponse("/runs", status_code=302)


def _health(request: Request) -> Response:
    console_of(request).client.redis.ping()
    return PlainTextResponse("ok")


def create_app(client: Client, token: ConsoleToken) -> Starlette:
    """The console for ``client``'s store; ``token`` (or none: read-only) guards every write."""
    from queue_core.console import actions, pages

    routes = [
        Route("/", _home),
        Route("/healthz", _health),
        Route("/runs", pages.runs),
        Route("/runs/{run_id}", pages.run),
        Route("/runs/{run_id}/logs", pages.run_logs),
        Route("/runs/{run_id}/cancel", actions.cancel_run, methods=["POST"]),
        Route("/workflows", pages.workflows),
        Route("/workflows/{name}", pages.workflow),
        Route("/workflow-runs/{run_id}", pages.workflow_run),
        Route("/workflow-runs/{run_id}/graph.svg", pages.workflow_graph),
        Route("/workflow-runs/{run_id}/cancel", actions.cancel_workflow_run, methods=["POST"]),
        Route("/workflow-runs/{run_id}/rerun", actions.rerun_task, methods=["POST"]),
        Route("/workflow-runs/{run_id}/repair", actions.repair_workflow_run, methods=["POST"]),
        Route("/definitions", pages.definitions),
        Route("/definitions/{name}", pages.definition),
        Route("/schedules", pages.schedules),
        Route("/schedules/{name}", pages.schedule),
        Route("/clusters", pages.clusters),
        Route("/events", pages.events),
        Route("/login", actions.login_form, methods=["GET"]),
        Route("/login", actions.login, methods=["POST"]),
        Route("/logout", actions.logout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={JobledgerError: _jobledger_error, HTTPException: _http_error, Exception: _server_error},
    )
    app.state.console = Console(client, token)
    return app
