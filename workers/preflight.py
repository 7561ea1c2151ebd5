"""What a worker checks and says before it takes a job: the sandbox it can give jobs, and a store jobs could reach.

``python -m workers.preflight`` prints the same lines (and exits 2 where a worker would refuse to start),
so that ``jobledger up`` and ``jobledger demo`` say them too without importing the compute side.
"""

from __future__ import annotations

import sys
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from queue_core.settings import Settings
from workers.sandbox import Sandbox, SandboxUnavailable, sandbox_for

__all__ = ["exposed_store", "preflight"]

PING_TIMEOUT_SECONDS = 2.0


def exposed_store(url: str | None) -> str | None:
    """A warning when the store answers without a password on a TCP address (a job's network reaches it)."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        return None  # a unix socket: the sandbox hides its folder
    port = parts.port or 6379
    anonymous = redis.Redis(
        host=parts.hostname,
        port=port,
        ssl=parts.scheme == "rediss",
        socket_timeout=PING_TIMEOUT_SECONDS,
        socket_connect_timeout=PING_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),  # redis-py retries a refused login ten times, with backoff, by default
    )
    try:
        anonymous.ping()
    except redis.RedisError:
        return None  # it asks for a password (or cannot be reached from here at all)
    finally:
        anonymous.close()
    return (
        f"WARNING: the store at {parts.hostname}:{port} answers without a password, and a job's network can reach "
        "it: a job could read and write every run and secret. Close it: set a password (requirepass, or ACL users "
        "with no 'nopass' default user), or have it listen on a unix socket only (port 0)"
    )


def preflight(settings: Settings) -> tuple[Sandbox, list[str]]:
    """The sandbox jobs get and the lines to say once at start; ``SandboxUnavailable`` to refuse to start."""
    sandbox = sandbox_for(settings)
    lines = list(sandbox.notes)
    exposure = exposed_store(settings.redis_url)
    if exposure is not None:
        lines.append(exposure)
    return sandbox, lines


def main() -> int:
    try:
        _, lines = preflight(Settings.from_env())
    except SandboxUnavailable as exc:
        print(f"jobledger: {exc}", file=sys.stderr)
        return exc.exit_code
    for line in lines:
        print(f"jobledger: {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
