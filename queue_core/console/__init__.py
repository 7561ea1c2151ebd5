"""The web console: server-rendered pages over the Client, read-only without a token."""

from queue_core.console.app import create_app
from queue_core.console.auth import ConsoleToken
from queue_core.console.server import serve

__all__ = ["ConsoleToken", "create_app", "serve"]
