"""Argument types the parsers share: each turns bad input into argparse's one-line error."""

from __future__ import annotations

import argparse

from queue_core.domain.runs import STATUSES
from queue_core.eventlog.positions import as_position

__all__ = ["as_of", "non_negative_int", "positive_int", "status", "true_or_false"]


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def true_or_false(text: str) -> bool:
    """``true`` or ``false`` (any case), as EnOS's True/False."""
    value = {"true": True, "false": False}.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} is neither true nor false")
    return value


def non_negative_int(text: str) -> int:
    """A whole number of at least 0."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 0")
    return int(text)


def status(text: str) -> str:
    """A run status, in any case."""
    if text.upper() not in STATUSES:
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(STATUSES)}")
    return text.upper()


def as_of(args: argparse.Namespace) -> str:
    """The log position ``--as-of`` names (a time or a position), or ``+`` for now."""
    return as_position(args.as_of, "--as-of") if getattr(args, "as_of", None) else "+"
