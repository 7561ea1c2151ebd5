"""The console's ASGI app: its routes, and how an error becomes a page (never a traceback)."""

from __future__ import annotations

import logging
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from queue_core.client import Client
from queue_core.console import actions, backfills, live, pages
from queue_core.console.auth import ConsoleToken
from queue_core.console.overview import overview
from queue_core.console.prometheus import SignInCollector, registry_for
from queue_core.console.rendering import Console, console_of, render
from queue_core.errors import AlreadyExists, AlreadyTerminal, InvalidInput, JobledgerError, NotFound

__all__ = ["create_app"]

log = logging.getLogger("jobledger.console")

_STATUS_OF_ERROR = {InvalidInput: 400, NotFound: 404, AlreadyTerminal: 409, AlreadyExists: 409}


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


def _health(request: Request) -> Response:
    console_of(request).client.redis.ping()
    return PlainTextResponse("ok")


def _metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    registry = registry_for(SignInCollector(console_of(request).token.throttle))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def create_app(client: Client, token: ConsoleToken) -> Starlette:
    """The console for ``client``'s store; ``token`` (or none: read-only) guards every write."""
    routes = [
        Route("/", overview),
        Route("/live", live.changes),
        Route("/timezone", pages.timezone),
        Route("/healthz", _health),
        Route("/metrics", _metrics),
        Route("/runs", pages.runs),
        Route("/runs/{run_id}", pages.run),
        Route("/runs/{run_id}/logs", pages.run_logs),
        Route("/runs/{run_id}/logs/stream", live.run_log_stream),
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
        Route("/backfills", backfills.backfills),
        Route("/backfills/{backfill_id}", backfills.backfill),
        Route("/backfills/{backfill_id}/cancel", actions.cancel_backfill, methods=["POST"]),
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
