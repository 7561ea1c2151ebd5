"""The web console: server-rendered pages over the Client, read-only without a token."""

from .app import create_app
from .auth import ConsoleToken
from .server import serve

__all__ = ["ConsoleToken", "create_app", "serve"]
