"""The retry strategy's pure parts: which rule matches a failed attempt, and how long to wait before the next."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

__all__ = ["matching_rule", "retry_delay_minutes"]

# With jitter the wait is between half the computed wait and all of it ("equal jitter"): retries of runs that
# failed together spread out, and a wait never shrinks to nothing.
JITTER_FLOOR = 0.5


def _exit_code_matches(patterns: Sequence[int | str], exit_code: int | None) -> bool:
    if exit_code is None:
        return False
    text = str(exit_code)
    for pattern in patterns:
        if isinstance(pattern, int):
            if pattern == exit_code:
                return True
        elif text.startswith(pattern[:-1]) if pattern.endswith("*") else text == pattern:
            return True
    return False


def matching_rule(
    rules: Sequence[Mapping[str, Any]], reason: str, exit_code: int | None, log_matches: Collection[int]
) -> int | None:
    """The index of the first rule whose every condition holds for the failed attempt, else None.

    ``onExitCode``: the exit code is one of the list (``"7*"``: any code starting with 7; no exit code
    matches nothing); ``onReason``: a regular expression matching the whole reason; ``onLogMatch``: the
    worker found the expression in the attempt's output (its index is in ``log_matches``).
    """
    for index, rule in enumerate(rules):
        if "onExitCode" in rule and not _exit_code_matches(rule["onExitCode"], exit_code):
            continue
        if "onReason" in rule and not re.fullmatch(rule["onReason"], reason):
            continue
        if "onLogMatch" in rule and index not in log_matches:
            continue
        return index
    return None


def _jitter(run_id: str, attempt: int) -> float:
    """A fraction in [JITTER_FLOOR, 1) drawn from the run and attempt: the same on every replay."""
    digest = hashlib.sha256(f"{run_id}/{attempt}".encode()).digest()
    unit = int.from_bytes(digest[:8], "big") / 2**64
    return JITTER_FLOOR + (1 - JITTER_FLOOR) * unit


def retry_delay_minutes(strategy: Mapping[str, Any], run_id: str, attempt: int) -> float:
    """The wait after failed attempt ``attempt`` (1 is the first): ``delayBetweenRetries`` under the backoff.

    Exponential: ``delay * factor ** (attempt - 1)``; either type capped at ``max`` minutes, then jittered.
    """
    delay = float(strategy["delayBetweenRetries"])
    backoff = strategy.get("backoff")  # absent from strategies defined without one
    if backoff is None:
        return delay
    if backoff["type"] == "exponential":
        # Capped before the power can overflow: attempts go to 101 and the factor to 10.
        delay = min(delay * backoff["factor"] ** min(attempt - 1, 64), backoff["max"])
    else:
        delay = min(delay, backoff["max"])
    if backoff["jitter"]:
        delay *= _jitter(run_id, attempt)
    return delay
