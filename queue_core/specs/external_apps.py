"""EXTERNAL_APP jobs' ``app`` section: the HTTP request that starts an external application, and how to poll
it until a condition (a JSONPath value or a status code) says it is done or failed; validated, secrets by name.

Airflow's ``HttpOperator`` (one request) and ``HttpSensor`` (poke until a check passes) are the model.
Headers and body may hold ``{"secret": NAME}`` anywhere; the worker puts the value in on use.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from queue_core.errors import InvalidInput
from queue_core.specs import checks
from queue_core.specs.jsonpath import parse_path

__all__ = ["METHODS", "TEMPLATE", "normalize_app"]

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
DEFAULT_INTERVAL_SECONDS = 5.0
MAX_INTERVAL_SECONDS = 3600.0
MAX_BODY_CHARS = 256 * 1024
# ``{{ $.id }}`` in the poll URL: a value of the start response's JSON, put in (URL-quoted) when polling.
TEMPLATE = re.compile(r"\{\{\s*(\$[^}]*?)\s*\}\}")
_APP_KEYS = {"start", "poll"}
_REQUEST_KEYS = {"method", "url", "headers", "body", "successCodes"}
_POLL_KEYS = _REQUEST_KEYS - {"body"} | {"interval", "timeout", "doneWhen", "failedWhen"}
_CONDITION_KEYS = {"path", "equals", "in", "exists", "status"}
_HEADER = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}")


def _url(value: Any, field: str, templated: bool = False) -> str:
    if not isinstance(value, str) or not value or len(value) > 4096:
        raise InvalidInput("must be an http:// or https:// URL", field)
    shown = TEMPLATE.sub("x", value) if templated else value
    if any(c.isspace() for c in shown):
        raise InvalidInput("must be an http:// or https:// URL without spaces", field)
    try:
        parts = urlsplit(shown)
    except ValueError:
        raise InvalidInput("is not a valid URL", field) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"must be an http:// or https:// URL, not {parts.scheme or 'a bare'}:", field)
    if parts.username is not None or parts.password is not None:
        raise InvalidInput('carries a credential; put it in a header as {"secret": "NAME"}', field)
    if templated:
        for i, match in enumerate(TEMPLATE.finditer(value)):
            parse_path(match.group(1), f"{field} (placeholder {i + 1})")
    return value


def _secret(value: Any, field: str) -> dict[str, str]:
    ref = checks.mapping(value, field)
    if set(ref) != {"secret"}:
        raise InvalidInput('must be a string or a secret reference {"secret": "NAME"}', field)
    return {"secret": checks.name(ref["secret"], f"{field}.secret")}


def _headers(value: Any, field: str) -> dict[str, Any]:
    headers = checks.mapping(value if value is not None else {}, field)
    out: dict[str, Any] = {}
    for name, val in headers.items():
        if not isinstance(name, str) or not _HEADER.fullmatch(name):
            raise InvalidInput(f"{str(name)[:40]!r} is not a header name", field)
        if isinstance(val, Mapping):
            out[name] = _secret(val, f"{field}.{name}")
        elif isinstance(val, str) and "\n" not in val and "\r" not in val and len(val) <= 8192:
            out[name] = val
        else:
            raise InvalidInput("must be one line of text or a secret reference", f"{field}.{name}")
    return out


def _codes(value: Any, field: str) -> list[int] | None:
    if value is None:
        return None
    codes = value if isinstance(value, list) else [value]
    return [checks.whole_number(c, field, 100, 599, what="HTTP status code") for c in codes]


def _request(raw: Any, field: str, keys: set[str], templated: bool = False) -> dict[str, Any]:
    request = checks.mapping(raw, field)
    checks.no_unknown(request, keys, field)
    method = checks.choice(str(request.get("method", "POST" if "body" in request else "GET")).upper(), METHODS,
                           f"{field}.method", "HTTP method")  # fmt: skip
    out: dict[str, Any] = {
        "method": method,
        "url": _url(request.get("url"), f"{field}.url", templated),
        "headers": _headers(request.get("headers"), f"{field}.headers"),
        "successCodes": _codes(request.get("successCodes"), f"{field}.successCodes"),
    }
    if "body" in request:
        body = request["body"]
        if isinstance(body, str) and len(body) > MAX_BODY_CHARS:
            raise InvalidInput(f"must be at most {MAX_BODY_CHARS} characters", f"{field}.body")
        out["body"] = body  # JSON (with secret references anywhere in it) or text
    return out


def _condition(raw: Any, field: str) -> dict[str, Any] | None:
    if raw is None:
        return None
    condition = checks.mapping(raw, field)
    checks.no_unknown(condition, _CONDITION_KEYS, field)
    if "status" in condition:
        if set(condition) != {"status"}:
            raise InvalidInput("is either {status: CODE(S)} or {path: $..., equals|in|exists: ...}", field)
        return {"status": _codes(condition["status"], f"{field}.status")}
    tests = [k for k in ("equals", "in", "exists") if k in condition]
    if len(tests) != 1:
        raise InvalidInput("needs a path and exactly one of equals, in or exists (or just status)", field)
    parse_path(condition.get("path"), f"{field}.path")
    value = condition[tests[0]]
    if tests[0] == "in" and not isinstance(value, list):
        raise InvalidInput("must be a list of values", f"{field}.in")
    if tests[0] == "exists":
        value = checks.boolean(value, f"{field}.exists")
    return {"path": condition["path"], tests[0]: value}


def normalize_app(raw: Any, field: str = "config.app") -> dict[str, Any]:
    """The ``app`` section with its defaults, or ``InvalidInput`` naming the first bad field."""
    app = checks.mapping(raw, field)
    checks.no_unknown(app, _APP_KEYS, field)
    out: dict[str, Any] = {"start": _request(app.get("start"), f"{field}.start", _REQUEST_KEYS), "poll": None}
    if app.get("poll") is not None:
        where = f"{field}.poll"
        poll = _request(app["poll"], where, _POLL_KEYS, templated=True)
        raw_poll = app["poll"]
        interval = checks.number(raw_poll.get("interval", DEFAULT_INTERVAL_SECONDS), f"{where}.interval")
        if not 0 < interval <= MAX_INTERVAL_SECONDS:
            raise InvalidInput(f"must be seconds above 0 and at most {MAX_INTERVAL_SECONDS:g}", f"{where}.interval")
        timeout = raw_poll.get("timeout")
        if timeout is not None and not checks.number(timeout, f"{where}.timeout") > 0:
            raise InvalidInput("must be a positive number of seconds", f"{where}.timeout")
        done = _condition(raw_poll.get("doneWhen"), f"{where}.doneWhen")
        if done is None:
            raise InvalidInput("is required: what says the application is done", f"{where}.doneWhen")
        poll.update(interval=interval, timeout=timeout, doneWhen=done,
                    failedWhen=_condition(raw_poll.get("failedWhen"), f"{where}.failedWhen"))  # fmt: skip
        out["poll"] = poll
    return out
