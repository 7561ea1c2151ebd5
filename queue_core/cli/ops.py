"""The operating verbs: ``jobledger metrics`` (Prometheus text from the log) and ``jobledger console``."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType
from typing import Any

from queue_core.client import Client
from queue_core.errors import InvalidInput

__all__ = ["add_ops_commands"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_METRICS_PORT = 9464
DEFAULT_CONSOLE_PORT = 8080


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be from 0 (any free port) to 65535")
    return value


def _until_stopped() -> None:
    """Block until SIGTERM or Ctrl-C."""
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stopped.wait()


def metrics(args: argparse.Namespace) -> int:
    from prometheus_client import start_http_server

    from queue_core.console.prometheus import LogCollector, registry_for

    collector = LogCollector(Client.from_env().store)
    folded = collector.catch_up()  # the whole history before the first scrape, not during it
    try:
        server, _thread = start_http_server(args.port, addr=args.host, registry=registry_for(collector))
    except OSError as exc:
        raise InvalidInput(f"cannot listen on {args.host}:{args.port}: {exc.strerror}", "--port") from None
    print(f"metrics of {folded} events on http://{args.host}:{server.server_port}/metrics", flush=True)
    _until_stopped()
    server.shutdown()
    return 0


def console(args: argparse.Namespace) -> int:
    from queue_core.console import serve

    return serve(Client.from_env(), args.host, args.port)


def add_ops_commands(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register ``jobledger metrics`` and ``jobledger console`` on the top-level subparsers."""
    p = sub.add_parser("metrics", help="serve Prometheus metrics folded from the log (history included)")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    p.add_argument("--port", type=_port, default=DEFAULT_METRICS_PORT, help="0: any free port")
    p.set_defaults(handler=metrics)

    p = sub.add_parser("console", help="serve the web console (read-only without JOBLEDGER_CONSOLE_TOKEN)")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    p.add_argument("--port", type=_port, default=DEFAULT_CONSOLE_PORT, help="0: any free port")
    p.set_defaults(handler=console)
