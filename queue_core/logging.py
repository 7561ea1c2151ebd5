"""structlog for jobledger's own log lines: JSON when not on a terminal, readable when on one."""

from __future__ import annotations

import logging
import sys
from typing import TextIO, cast

import structlog

from queue_core.masking import install_stdlib_masking, structlog_processor

__all__ = ["configure_logging"]


class _Stderr:
    """Whatever ``sys.stderr`` is when a line is written (not the one it was at configuration)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: int = logging.INFO, stdlib: bool = False) -> None:
    """Configure structlog to write to stderr; with ``stdlib``, the root stdlib logger too.

    Inside an ``rq worker`` RQ has configured stdlib logging already, so only structlog is set.
    """
    renderer: structlog.types.Processor
    if sys.stderr.isatty():
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog_processor,  # secret values of the attempt in progress become ***
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _Stderr())),
        cache_logger_on_first_use=True,
    )
    install_stdlib_masking()
    if stdlib:
        logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
