"""The console's token: read-only without one; with one, writes need it (a bearer header, or a signed-in session
cookie plus the form's CSRF field). Every comparison is of HMACs, in constant time; the token itself is never
stored in a cookie, a page or a log line. Sessions are server-side (``sessions.py``), and every check of a
given token, sign-in or bearer, goes through the client's throttle."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request

from queue_core.console.sessions import LoginThrottle, Sessions
from queue_core.errors import InvalidInput

__all__ = ["COOKIE", "TOKEN_ENV", "TOKEN_FILE_ENV", "TRUST_PROXY_ENV", "ConsoleToken", "SignIn"]

TOKEN_ENV = "JOBLEDGER_CONSOLE_TOKEN"
TOKEN_FILE_ENV = "JOBLEDGER_CONSOLE_TOKEN_FILE"
# Set when a TLS-terminating proxy on the same path forwards to the console: its X-Forwarded-Proto and
# X-Forwarded-For are believed then, and only then (anyone else could send them).
TRUST_PROXY_ENV = "JOBLEDGER_CONSOLE_TRUST_PROXY"
COOKIE = "jobledger_console"
CSRF_FIELD = "csrf"


@dataclass(frozen=True)
class SignIn:
    """What a given token came to: accepted (with a session id when it was a sign-in), or refused with the
    seconds the client must now wait; ``throttled`` when it was refused unchecked, during such a wait."""

    accepted: bool
    session_id: str | None = None
    retry_after: int = 0
    throttled: bool = False


class ConsoleToken:
    """The token the console was started with (or none: read-only), its sessions and its throttle."""

    def __init__(
        self, token: str | None, clock: Callable[[], float] = time.monotonic, trust_proxy: bool = False
    ) -> None:
        self._key = token.encode() if token else None
        self.sessions = Sessions(clock)
        self.throttle = LoginThrottle(clock)
        self.trust_proxy = trust_proxy

    def __repr__(self) -> str:
        return f"ConsoleToken(enabled={self.enabled})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConsoleToken:
        """``JOBLEDGER_CONSOLE_TOKEN``, else the file ``JOBLEDGER_CONSOLE_TOKEN_FILE`` names (a compose secret)."""
        env = os.environ if environ is None else environ
        trust_proxy = env.get(TRUST_PROXY_ENV, "").lower() in ("1", "true", "yes")
        if env.get(TOKEN_ENV):
            return cls(env[TOKEN_ENV], trust_proxy=trust_proxy)
        path = env.get(TOKEN_FILE_ENV)
        if not path:
            return cls(None, trust_proxy=trust_proxy)
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror}", TOKEN_FILE_ENV) from None
        token = text.rstrip("\r\n")
        if not token:
            raise InvalidInput(f"{path} is empty", TOKEN_FILE_ENV)
        return cls(token, trust_proxy=trust_proxy)

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

    def client_of(self, request: Request) -> str:
        """Who is asking, for the throttle: the peer's address, or behind a trusted proxy the one it saw."""
        if self.trust_proxy:
            forwarded = request.headers.get("x-forwarded-for", "").split(",")[-1].strip()
            if forwarded:
                return forwarded
        return request.client.host if request.client else "-"

    def secure(self, request: Request) -> bool:
        """Whether the browser reached the console over TLS (so its cookie may only travel over TLS)."""
        if self.trust_proxy and request.headers.get("x-forwarded-proto", "").lower() == "https":
            return True
        return request.url.scheme == "https"

    def check(self, request: Request, given: str) -> SignIn:
        """Check a given token through the client's throttle."""
        client = self.client_of(request)
        wait = self.throttle.retry_after(client)
        if wait:
            return SignIn(False, retry_after=wait, throttled=True)  # not even compared while the client waits
        if not self.matches(given):
            return SignIn(False, retry_after=self.throttle.failed(client))
        self.throttle.succeeded(client)
        return SignIn(True)

    def sign_in(self, request: Request, given: str) -> SignIn:
        """``check``, and for a match a new session."""
        outcome = self.check(request, given)
        return SignIn(True, session_id=self.sessions.open()) if outcome.accepted else outcome

    def csrf(self) -> str:
        """The hidden field every write form carries while signed in."""
        return self._mac("csrf")

    def signed_in(self, request: Request) -> bool:
        return self.enabled and self.sessions.valid(request.cookies.get(COOKIE))

    def sign_out(self, request: Request) -> None:
        self.sessions.revoke(request.cookies.get(COOKIE))

    def may_write(self, request: Request, form: Mapping[str, str]) -> bool:
        """A bearer ``Authorization`` header with the token, or the signed-in cookie and the form's CSRF field."""
        if not self.enabled:
            return False
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and given:
            return self.check(request, given.strip()).accepted
        return self.signed_in(request) and hmac.compare_digest(form.get(CSRF_FIELD, ""), self.csrf())
