"""``jobledger console``: the app served by uvicorn on a socket bound first, so a taken port is a one-line error."""

from __future__ import annotations

import socket

import uvicorn

from queue_core.client import Client
from queue_core.console.app import create_app
from queue_core.console.auth import ConsoleToken
from queue_core.errors import InvalidInput

__all__ = ["serve"]

SHUTDOWN_GRACE_SECONDS = 3


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InvalidInput(f"cannot listen on {host}:{port}: {exc.strerror}", "--port") from None
    sock.listen(128)
    return sock


def serve(client: Client, host: str, port: int) -> int:
    """Serve the console until SIGTERM or Ctrl-C."""
    token = ConsoleToken.from_env()
    sock = _bind(host, port)
    bound = sock.getsockname()[1]
    mode = "cancel, rerun and repair need the token" if token.enabled else "read-only: no JOBLEDGER_CONSOLE_TOKEN"
    print(f"console on http://{host}:{bound} ({mode})", flush=True)
    config = uvicorn.Config(
        create_app(client, token),
        log_level="warning",
        access_log=False,
        proxy_headers=False,  # X-Forwarded-* are believed only with JOBLEDGER_CONSOLE_TRUST_PROXY (auth.py)
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0
