"""Live pages: server-sent events of the log's changes (resumed after a reconnect from the browser's Last-Event-ID)
and a run's output streamed as it is written."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from queue_core.console.logwatch import MISSED_READ, Change, LogWatch
from queue_core.console.rendering import console_of
from queue_core.domain.runs import TERMINAL
from queue_core.errors import InvalidInput
from queue_core.eventlog.positions import position_key
from queue_core.eventlog.runlog import LogLine

__all__ = ["changes", "run_log_stream"]

KEEPALIVE_SECONDS = 15.0  # a comment line this often, so proxies keep an idle stream open
COALESCE_SECONDS = 1.0  # at most one message per page per second: what lands meanwhile goes in the next one
LOG_BLOCK_MS = 1000
RETRY_MS = 2000  # how soon the browser reconnects a dropped stream
_POSITION = re.compile(r"^\d{1,20}(-\d{1,20})?$")


def _position(request: Request, name: str) -> str:
    """Where a stream resumes: the browser's Last-Event-ID after a reconnect, else the ``after`` parameter."""
    given = (request.headers.get("last-event-id") or request.query_params.get(name, "")).strip()
    if given and not _POSITION.match(given):
        raise InvalidInput(f"{given[:40]!r} is not a log position", name)
    return given


def _stream(body: AsyncIterator[str]) -> Response:
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


async def changes(request: Request) -> Response:
    """``/live``: a ``change`` message whenever events land, at most one a second; a page redraws what it shows."""
    console = console_of(request)
    after = _position(request, "after")
    watch: LogWatch = console.watch

    async def body() -> AsyncIterator[str]:
        listener = watch.listen()  # before looking back: nothing lands unseen between the two
        try:
            yield f"retry: {RETRY_MS}\n\n"
            sent = after
            if after:
                missed = await run_in_threadpool(console.client.store.follow, after, 1, MISSED_READ)
                if missed:
                    change = Change.of(missed, more=len(missed) == MISSED_READ)
                    yield change.message()
                    sent = change.position
            else:
                head = await run_in_threadpool(console.client.store.last_position)
                yield f"id: {head}\nevent: hello\ndata: {{}}\n\n"
                sent = head
            pending: Change | None = None
            while True:
                try:
                    got = await asyncio.wait_for(listener[1].get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": still here\n\n"
                    continue
                if sent and position_key(got.position) <= position_key(sent):
                    continue
                pending = got if pending is None else pending.merge(got)
                await asyncio.sleep(COALESCE_SECONDS)
                while not listener[1].empty():
                    pending = pending.merge(listener[1].get_nowait())
                yield pending.message()
                sent, pending = pending.position, None
        finally:
            watch.leave(listener)

    return _stream(body())


def _line_message(line: LogLine) -> str:
    data = {k: getattr(line, k) for k in ("time", "attempt", "stream", "line")}
    return f"id: {line.position}\nevent: line\ndata: {orjson.dumps(data).decode()}\n\n"


async def run_log_stream(request: Request) -> Response:
    """``/runs/RUN/logs/stream``: the run's output lines as they are written, then ``end`` once it has ended."""
    client = console_of(request).client
    run_id = request.path_params["run_id"]
    after = _position(request, "after") or "0"
    await run_in_threadpool(client.get_run, run_id)  # NotFound: a 404 page, not a stream

    async def body() -> AsyncIterator[str]:
        nonlocal after
        yield f"retry: {RETRY_MS}\n\n"
        if after == "0":
            marker = await run_in_threadpool(client.run_log.marker, run_id)
            if marker is not None:
                yield _line_message(marker).replace(f"id: {marker.position}\n", "", 1)
        status = None
        while True:
            current = await run_in_threadpool(client.get_run, run_id)  # before the lines: none can come after
            lines = await run_in_threadpool(client.run_log.read, run_id, after, 1000)
            if not lines and current["status"] not in TERMINAL:
                lines = await run_in_threadpool(client.run_log.follow, run_id, after, LOG_BLOCK_MS)
            for line in lines:
                yield _line_message(line)
            if lines:
                after = lines[-1].position
            if (current["status"], current["reason"]) != status:
                status = (current["status"], current["reason"])
                data = orjson.dumps({"status": status[0], "reason": status[1]}).decode()
                yield f"event: status\ndata: {data}\n\n"
            if current["status"] in TERMINAL and not lines:
                ended = orjson.dumps({"status": current["status"], "reason": current["reason"]}).decode()
                yield f"event: end\ndata: {ended}\n\n"
                return

    return _stream(body())
