"""Console sign-in state, in the console process's memory: sessions by a hash of their random id, and the
throttle that slows a client's failed sign-ins down exponentially. Both take the clock they run on.

Nothing here is in Redis (the console's Redis user may only read), so a restarted console forgets every
session and throttle: users sign in again.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "ABSOLUTE_SECONDS",
    "FREE_FAILURES",
    "IDLE_SECONDS",
    "THROTTLE_BASE_SECONDS",
    "THROTTLE_CAP_SECONDS",
    "LoginThrottle",
    "Sessions",
]

Clock = Callable[[], float]
IDLE_SECONDS = 30 * 60  # a session unused this long is gone
ABSOLUTE_SECONDS = 12 * 3600  # and every session is gone this long after sign-in, used or not
FREE_FAILURES = 2  # a mistyped token and its retry cost nothing; then ...
THROTTLE_BASE_SECONDS = 1.0  # ... after the n-th further failure in a row a client waits base * 2^(n-1) ...
THROTTLE_CAP_SECONDS = 300.0  # ... up to this
MAX_SESSIONS = 10_000
MAX_CLIENTS = 10_000


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass
class _Session:
    created: float
    last_seen: float


class Sessions:
    """Signed-in sessions: the cookie holds a random id, this table only its SHA-256."""

    def __init__(
        self, clock: Clock = time.monotonic, idle: float = IDLE_SECONDS, absolute: float = ABSOLUTE_SECONDS
    ) -> None:
        self.clock = clock
        self.idle = idle
        self.absolute = absolute
        self._held: OrderedDict[str, _Session] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._held)

    def open(self) -> str:
        """A new session; returns its id (for the cookie, never kept here)."""
        session_id = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._prune(now)
            self._held[_digest(session_id)] = _Session(now, now)
            while len(self._held) > MAX_SESSIONS:
                self._held.popitem(last=False)  # the oldest sign-in goes first
        return session_id

    def valid(self, session_id: str | None) -> bool:
        """Whether ``session_id`` is a live session; using it keeps it from idling out."""
        if not session_id:
            return False
        now = self.clock()
        with self._lock:
            key = _digest(session_id)
            session = self._held.get(key)
            if session is None:
                return False
            if now - session.last_seen >= self.idle or now - session.created >= self.absolute:
                del self._held[key]
                return False
            session.last_seen = now
            return True

    def revoke(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._held.pop(_digest(session_id), None)

    def _prune(self, now: float) -> None:
        gone = [
            key for key, s in self._held.items() if now - s.last_seen >= self.idle or now - s.created >= self.absolute
        ]
        for key in gone:
            del self._held[key]


@dataclass
class _Failures:
    count: int
    until: float


class LoginThrottle:
    """Per client: after ``free`` failed sign-ins in a row, the n-th further one means no attempt is checked
    for base * 2^(n-1) seconds (capped); a success forgets the client's failures."""

    def __init__(
        self,
        clock: Clock = time.monotonic,
        base: float = THROTTLE_BASE_SECONDS,
        cap: float = THROTTLE_CAP_SECONDS,
        free: int = FREE_FAILURES,
    ) -> None:
        self.clock = clock
        self.base = base
        self.cap = cap
        self.free = free
        self.failed_total = 0
        self.throttled_total = 0
        self._clients: OrderedDict[str, _Failures] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int:
        """Whole seconds ``client`` must still wait (0: it may try); a refusal is counted as throttled."""
        with self._lock:
            failures = self._clients.get(client)
            left = failures.until - self.clock() if failures else 0.0
            if left <= 0:
                return 0
            self.throttled_total += 1
            return max(1, math.ceil(left))

    def failed(self, client: str) -> int:
        """Count a failure; returns the seconds the client now waits."""
        with self._lock:
            failures = self._clients.pop(client, None) or _Failures(0, 0.0)
            failures.count += 1
            beyond = failures.count - self.free
            wait = min(self.cap, self.base * 2 ** min(beyond - 1, 62)) if beyond > 0 else 0.0
            failures.until = self.clock() + wait
            self._clients[client] = failures  # most recent last: the table forgets the longest-quiet first
            while len(self._clients) > MAX_CLIENTS:
                self._clients.popitem(last=False)
            self.failed_total += 1
            return math.ceil(wait)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)
