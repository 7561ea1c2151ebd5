"""GET and POST for tests of the console, with headers and cookies; redirects are not followed."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.cookies import SimpleCookie


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass
class Reply:
    status: int
    body: str
    headers: dict[str, str]  # names in lower case
    cookies: dict[str, str] = field(default_factory=dict)


def request(
    base: str,
    path: str,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    cookies: dict[str, str] | None = None,
) -> Reply:
    """GET ``path`` (POST when ``form`` is given, urlencoded) and return the reply, whatever its status."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    sent = dict(headers or {})
    if cookies:
        sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    req = urllib.request.Request(base + path, data=data, headers=sent, method="POST" if form is not None else "GET")
    try:
        response = _OPENER.open(req, timeout=30)
    except urllib.error.HTTPError as error:
        response = error
    with response:
        body = response.read().decode("utf-8", "replace")
        jar = SimpleCookie()
        for value in response.headers.get_all("Set-Cookie") or []:
            jar.load(value)
        return Reply(
            response.status,
            body,
            {k.lower(): v for k, v in response.headers.items()},
            {k: m.value for k, m in jar.items()},
        )
