"""The console's token: read-only without one; with one, writes need it (a bearer header, or a signed-in cookie
plus the form's CSRF field). Every comparison is of HMACs, in constant time; the token itself is never stored
in a cookie, a page or a log line."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from pathlib import Path

from starlette.requests import Request

from queue_core.errors import InvalidInput

__all__ = ["COOKIE", "TOKEN_ENV", "TOKEN_FILE_ENV", "ConsoleToken"]

TOKEN_ENV = "JOBLEDGER_CONSOLE_TOKEN"
TOKEN_FILE_ENV = "JOBLEDGER_CONSOLE_TOKEN_FILE"
COOKIE = "jobledger_console"
CSRF_FIELD = "csrf"


class ConsoleToken:
    """The token the console was started with (or none: read-only)."""

    def __init__(self, token: str | None) -> None:
        self._key = token.encode() if token else None

    def __repr__(self) -> str:
        return f"ConsoleToken(enabled={self.enabled})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConsoleToken:
        """``JOBLEDGER_CONSOLE_TOKEN``, else the file ``JOBLEDGER_CONSOLE_TOKEN_FILE`` names (a compose secret)."""
        env = os.environ if environ is None else environ
        if env.get(TOKEN_ENV):
            return cls(env[TOKEN_ENV])
        path = env.get(TOKEN_FILE_ENV)
        if not path:
            return cls(None)
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror}", TOKEN_FILE_ENV) from None
        token = text.rstrip("\r\n")
        if not token:
            raise InvalidInput(f"{path} is empty", TOKEN_FILE_ENV)
        return cls(token)

    @property
    def enabled(self) -> bool:
        return self._key is not None

    def _mac(self, purpose: str, value: str = "") -> str:
        assert self._key is not None
        return hmac.new(self._key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def matches(self, given: str) -> bool:
        """Whether ``given`` is the token: compared as HMACs, so the time taken says nothing about it."""
        if self._key is None:
            return False
        return hmac.compare_digest(self._mac("check", given), self._mac("check", self._key.decode()))

    def session(self) -> str:
        """The signed-in cookie's value: derived from the token, never the token."""
        return self._mac("session")

    def csrf(self) -> str:
        """The hidden field every write form carries while signed in."""
        return self._mac("csrf")

    def signed_in(self, request: Request) -> bool:
        cookie = request.cookies.get(COOKIE)
        return self.enabled and cookie is not None and hmac.compare_digest(cookie, self.session())

    def may_write(self, request: Request, form: Mapping[str, str]) -> bool:
        """A bearer ``Authorization`` header with the token, or the signed-in cookie and the form's CSRF field."""
        if not self.enabled:
            return False
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and given:
            return self.matches(given.strip())
        return self.signed_in(request) and hmac.compare_digest(form.get(CSRF_FIELD, ""), self.csrf())
