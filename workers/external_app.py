"""An EXTERNAL_APP job, run as the attempt's child: start the application over HTTP, then poll it until done.

Run by path in the attempt's sandbox (network allowed), like the SQL runner. Its argument is a spec file
holding the ``app`` section with secrets by name only; their values come in ``JOBLEDGER_APP_SECRETS`` (JSON)
and are put into headers and body on use; a pre-run's requests say ``X-Jobledger-Prerun: 1``. Each response's
status and a masked excerpt go to the run's log; the outcome (or why it failed) goes to the result file the
worker reads.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

from queue_core.errors import JobledgerError
from queue_core.specs.external_apps import TEMPLATE
from queue_core.specs.jsonpath import MISSING, find, parse_path
from queue_core.specs.preruns import PRERUN_HEADER

__all__ = ["main"]

SECRETS_ENV = "JOBLEDGER_APP_SECRETS"
EXCERPT_CHARS = 300
REQUEST_TIMEOUT_SECONDS = 30.0
MAX_RESPONSE_BYTES = 1024 * 1024


class AppFailed(JobledgerError):
    """Raised in the child when the application failed, could not be reached or did not finish in time."""


def _put_secrets(value: Any, secrets: dict[str, str]) -> Any:
    """``value`` with each ``{"secret": NAME}`` replaced by the secret's value (an explicit stack: no recursion)."""
    root: list[Any] = [value]
    pending: list[tuple[Any, Any]] = [(root, 0)]
    while pending:
        parent, key = pending.pop()
        item = parent[key]
        if isinstance(item, dict) and set(item) == {"secret"} and isinstance(item["secret"], str):
            parent[key] = secrets[item["secret"]]
        elif isinstance(item, dict):
            parent[key] = dict(item)
            pending.extend((parent[key], k) for k in parent[key])
        elif isinstance(item, list):
            parent[key] = list(item)
            pending.extend((parent[key], i) for i in range(len(item)))
    return root[0]


def _excerpt(body: bytes, secrets: dict[str, str]) -> str:
    text = " ".join(body[: EXCERPT_CHARS * 4].decode("utf-8", "replace").split())[:EXCERPT_CHARS]
    for value in secrets.values():
        if value:
            text = text.replace(value, "***")
    return text


def _call(request: dict[str, Any], url: str, secrets: dict[str, str]) -> tuple[int, bytes]:
    headers = _put_secrets(request["headers"], secrets)
    data = None
    if "body" in request:
        body = _put_secrets(request["body"], secrets)
        if isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
    prepared = urllib.request.Request(url, data=data, headers=headers, method=request["method"])
    try:
        with urllib.request.urlopen(prepared, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            return int(response.status), response.read(MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(MAX_RESPONSE_BYTES)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise AppFailed(f"{request['method']} {url}: cannot reach it: {reason}") from None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return MISSING


def _succeeded(status: int, codes: list[int] | None) -> bool:
    return status in codes if codes is not None else 200 <= status < 300


def _holds(condition: dict[str, Any] | None, status: int, document: Any) -> bool:
    if condition is None:
        return False
    if "status" in condition:
        return status in condition["status"]
    value = find(document, parse_path(condition["path"], "path")) if document is not MISSING else MISSING
    if "exists" in condition:
        return (value is not MISSING) == condition["exists"]
    if value is MISSING:
        return False
    return value == condition["equals"] if "equals" in condition else value in condition["in"]


def _poll_url(template: str, document: Any) -> str:
    def fill(match: Any) -> str:
        value = find(document, parse_path(match.group(1), "poll.url")) if document is not MISSING else MISSING
        if value is MISSING or isinstance(value, dict | list):
            raise AppFailed(f"the start response has no value at {match.group(1)} for the poll URL")
        return quote(str(value), safe="")

    return TEMPLATE.sub(fill, template)


def run_app(app: dict[str, Any], secrets: dict[str, str]) -> dict[str, Any]:
    """Start the application and, with a ``poll`` section, poll it until done; ``AppFailed`` otherwise."""
    start = app["start"]
    status, body = _call(start, start["url"], secrets)
    print(f"start: {start['method']} {start['url']} -> {status} {_excerpt(body, secrets)}", flush=True)
    if not _succeeded(status, start["successCodes"]):
        raise AppFailed(f"start: {start['method']} {start['url']} answered {status}")
    outcome: dict[str, Any] = {"start": status, "polls": 0}
    poll = app["poll"]
    if poll is None:
        return outcome
    url = _poll_url(poll["url"], _json(body))
    deadline = None if poll["timeout"] is None else time.monotonic() + float(poll["timeout"])
    while True:
        status, body = _call(poll, url, secrets)
        outcome["polls"] += 1
        outcome["last"] = status
        document = _json(body)
        print(f"poll {outcome['polls']}: {poll['method']} {url} -> {status} {_excerpt(body, secrets)}", flush=True)
        if _holds(poll["failedWhen"], status, document):
            raise AppFailed(f"poll {outcome['polls']}: the application says it failed ({status})")
        if _holds(poll["doneWhen"], status, document):
            print(f"done after {outcome['polls']} polls", flush=True)
            return outcome
        if not _succeeded(status, poll["successCodes"]) and "status" not in poll["doneWhen"]:
            raise AppFailed(f"poll {outcome['polls']}: {poll['method']} {url} answered {status}")
        if deadline is not None and time.monotonic() + float(poll["interval"]) > deadline:
            raise AppFailed(f"not done after {poll['timeout']:g} s of polling ({outcome['polls']} polls)")
        time.sleep(float(poll["interval"]))


def told_prerun(app: dict[str, Any]) -> dict[str, Any]:
    """The app section with ``X-Jobledger-Prerun: 1`` on its start and poll requests (a pre-run's task)."""
    told = dict(app)
    for part in ("start", "poll"):
        if told.get(part) is not None:
            told[part] = {**told[part], "headers": {**told[part]["headers"], PRERUN_HEADER: "1"}}
    return told


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    secrets = json.loads(os.environ.pop(SECRETS_ENV, "{}"))
    result_path = Path(spec["result_path"])
    app = told_prerun(spec["app"]) if spec["prerun"] else spec["app"]
    try:
        outcome = run_app(app, secrets)
    except AppFailed as exc:
        print(str(exc), file=sys.stderr, flush=True)
        result_path.write_text(json.dumps({"error": str(exc)}))
        return 1
    result_path.write_text(json.dumps({"app": outcome}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
