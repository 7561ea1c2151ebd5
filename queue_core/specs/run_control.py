"""Validation of the run-control fields of a definition or task: ``maxConcurrentRuns``, ``pool``, ``poolSlots``,
``priority``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from queue_core.errors import InvalidInput
from queue_core.specs import checks

__all__ = [
    "DEFAULT_PRIORITY",
    "MAX_CONCURRENT_RUNS",
    "MAX_POOL_SLOTS",
    "MAX_PRIORITY",
    "MIN_PRIORITY",
    "RUN_CONTROL_KEYS",
    "check_priority",
    "check_slots",
    "normalize_run_control",
]

MIN_PRIORITY, MAX_PRIORITY = 0, 9
DEFAULT_PRIORITY = 5  # in the middle: a run can be put ahead of the usual ones, or behind them
MAX_CONCURRENT_RUNS = 10_000
MAX_POOL_SLOTS = 10_000
RUN_CONTROL_KEYS = ("maxConcurrentRuns", "pool", "poolSlots", "priority")


def check_priority(value: Any, field: str = "priority") -> int:
    """A priority: a whole number from 0 (last) to 9 (first)."""
    return checks.whole_number(value, field, MIN_PRIORITY, MAX_PRIORITY, what="priority")


def check_slots(value: Any, field: str = "slots") -> int:
    """A number of pool slots: at least 1."""
    return checks.whole_number(value, field, 1, MAX_POOL_SLOTS)


def normalize_run_control(
    raw: Mapping[str, Any], field: str, keys: tuple[str, ...] = RUN_CONTROL_KEYS
) -> dict[str, Any]:
    """The run-control fields of ``raw`` that are given (``field`` names where ``raw`` sits, ``keys`` the ones
    allowed there), checked; absent fields stay absent, so a definition without them keeps its normalized form.
    """
    at = f"{field}." if field else ""
    out: dict[str, Any] = {}
    if "maxConcurrentRuns" in keys and "maxConcurrentRuns" in raw:
        out["maxConcurrentRuns"] = checks.whole_number(
            raw["maxConcurrentRuns"], f"{at}maxConcurrentRuns", 1, MAX_CONCURRENT_RUNS
        )
    if "pool" in raw:
        out["pool"] = checks.name(raw["pool"], f"{at}pool")
        out["poolSlots"] = check_slots(raw.get("poolSlots", 1), f"{at}poolSlots")
    elif "poolSlots" in raw:
        raise InvalidInput("needs a pool to take its slots from", f"{at}poolSlots")
    if "priority" in raw:
        out["priority"] = check_priority(raw["priority"], f"{at}priority")
    return out
