"""The console app served over real HTTP from a thread of the test, so a test can hold its clock and its token."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from queue_core import Client
from queue_core.console.app import create_app
from queue_core.console.auth import ConsoleToken
from tests.support.processes import eventually


class SetClock:
    """A monotonic clock the test sets: the console's sessions and throttle read it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def console_in_thread(client: Client, token: ConsoleToken) -> Iterator[str]:
    """Serve the console for ``client`` with ``token`` on a free loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    config = uvicorn.Config(create_app(client, token), log_level="warning", access_log=False, proxy_headers=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        eventually(lambda: server.started, timeout=30, what="the console to listen")
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
