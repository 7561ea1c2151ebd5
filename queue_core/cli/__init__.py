"""The ``jobledger`` command line."""

from queue_core.cli.main import main

__all__ = ["main"]
