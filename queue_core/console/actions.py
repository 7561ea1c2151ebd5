"""The console's writes (cancel a run or backfill, rerun, repair) and signing in: each needs the token, or 403."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from queue_core.console.auth import COOKIE
from queue_core.console.rendering import console_of, render

__all__ = [
    "cancel_backfill",
    "cancel_run",
    "cancel_workflow_run",
    "login",
    "login_form",
    "logout",
    "repair_workflow_run",
    "rerun_task",
]

MAX_FORM_BYTES = 16 * 1024


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form (the console's forms are nothing else), without a multipart parser."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _refused(request: Request) -> Response:
    console = console_of(request)
    reason = (
        "this console was started without JOBLEDGER_CONSOLE_TOKEN: it is read-only"
        if not console.token.enabled
        else "cancel, rerun and repair need the console token: sign in first"
    )
    return render(
        request, "error.html", status_code=403, title="Refused", message=reason, sign_in=console.token.enabled
    )


async def _write(request: Request, action: Callable[[], Any], then: str) -> Response:
    form = await _form(request)
    if not console_of(request).token.may_write(request, form):
        return _refused(request)
    await run_in_threadpool(action)
    return RedirectResponse(then, status_code=303)


async def cancel_run(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    client = console_of(request).client
    return await _write(request, lambda: client.cancel(run_id), f"/runs/{run_id}?done=cancelled")


async def cancel_workflow_run(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    client = console_of(request).client
    return await _write(request, lambda: client.cancel_workflow_run(run_id), f"/workflow-runs/{run_id}?done=cancelled")


async def rerun_task(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    client = console_of(request).client
    form = await _form(request)  # the body is cached: _write reads the same one
    task, downstream = form.get("task", ""), form.get("downstream") == "1"
    action = lambda: client.rerun_workflow_task(run_id, task, downstream)  # noqa: E731
    return await _write(request, action, f"/workflow-runs/{run_id}?done=rerun")


async def repair_workflow_run(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    client = console_of(request).client
    return await _write(request, lambda: client.repair_workflow_run(run_id), f"/workflow-runs/{run_id}?done=repaired")


async def cancel_backfill(request: Request) -> Response:
    backfill_id = request.path_params["backfill_id"]
    client = console_of(request).client
    return await _write(
        request, lambda: client.cancel_backfill(backfill_id), f"/backfills/{backfill_id}?done=cancelled"
    )


def _next(target: str) -> str:
    """Only a path of this console: never another site."""
    return target if target.startswith("/") and not target.startswith("//") else "/runs"


async def login_form(request: Request) -> Response:
    return render(request, "login.html", next=_next(request.query_params.get("next", "/runs")), failed=False)


async def login(request: Request) -> Response:
    console = console_of(request)
    form = await _form(request)
    target = _next(form.get("next", "/runs"))
    if not console.token.enabled:
        return _refused(request)
    outcome = console.token.sign_in(request, form.get("token", ""))
    if outcome.session_id is None:
        status = 429 if outcome.throttled else 403
        failed, wait = not outcome.throttled, outcome.retry_after
        reply = render(request, "login.html", status_code=status, next=target, failed=failed, wait=wait)
        if outcome.retry_after:
            reply.headers["Retry-After"] = str(outcome.retry_after)
        return reply
    separator = "&" if "?" in target else "?"
    response = RedirectResponse(f"{target}{separator}done=signed-in", status_code=303)
    response.set_cookie(
        COOKIE,
        outcome.session_id,
        max_age=int(console.token.sessions.absolute),
        path="/",
        httponly=True,
        samesite="strict",
        secure=console.token.secure(request),
    )
    return response


async def logout(request: Request) -> Response:
    console_of(request).token.sign_out(request)
    response = RedirectResponse("/runs", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
